"""The bot as a chat partner, end to end against the emulator: follow-ups and /new, group manners, answer
buttons and the feedback file, small talk and refusals, the command menu (also when registering it fails).

The emulator's bot is @TestNameBot (id 666); tests/telegram_emulator/server.js records setMyCommands and
answerCallbackQuery so that the tests can see them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.config import TelegramSettings, with_overrides
from bot.telegram_chat import (
    ALREADY_VOTED,
    ANSWERER_KEY,
    GREETING_REPLY,
    NEW_CONVERSATION,
    STALE_BUTTON,
    THANKS_REPLY,
    VOTE_THANKS,
    with_typing,
)
from tests.telegram_emulator.harness import Emulator, EmulatorClient
from tests.test_telegram_bot import (
    bold_answer,
    bot_and_client,
    emulator,
    needs_node,
    running_bot,
    session_loop,
    shown_text,
)

__all__ = ["emulator"]  # the session's emulator fixture, shared with test_telegram_bot

TOKEN = "777777:qabot-chat-tests"
BOT_USER = {"id": 666, "is_bot": True, "first_name": "Test First name", "username": "TestNameBot"}
GROUP = -100123


@pytest.fixture(scope="module")
def chat_settings(emulator: Emulator, qa_service, tmp_path_factory) -> TelegramSettings:
    feedback = tmp_path_factory.mktemp("feedback") / "votes.jsonl"
    return with_overrides(qa_service.settings.telegram, {"base_url": emulator.bot_api_url, "feedback_file": feedback})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(qa_service, chat_settings: TelegramSettings, emulator: Emulator) -> AsyncIterator[EmulatorClient]:
    async with bot_and_client(qa_service, TOKEN, chat_settings, emulator) as talking:
        yield talking


async def say(client: EmulatorClient, user_id: int, text: str) -> dict[str, Any]:
    await client.send_text(user_id, text)
    (reply,) = await client.replies(user_id)
    return reply


async def silence(client: EmulatorClient, chat_id: int) -> bool:
    await asyncio.sleep(1.0)
    return await client.new_replies(chat_id) == []


def buttons(reply: dict[str, Any]) -> dict[str, str]:
    markup = reply.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return {button["text"]: button["callback_data"] for row in markup.get("inline_keyboard", []) for button in row}


# -- private chats --------------------------------------------------------------------------------------


@needs_node
@session_loop
async def test_private_follow_up_and_new(client: EmulatorClient):
    first = await say(client, 601, "Who characterises Ahrar al-Sham as a terror organisation?")
    assert "Russia and the Syrian government" in bold_answer(first)
    follow_up = await say(client, 601, "who backs it?")
    assert "reading ‘it’ as Ahrar al-Sham" in shown_text(follow_up)
    assert bold_answer(follow_up) == "Turkey, Saudi Arabia, and Qatar"
    await client.send_command(601, "/new")
    (reset,) = await client.replies(601)
    assert reset["text"] == NEW_CONVERSATION
    fresh = await say(client, 601, "who backs it?")
    assert "reading" not in shown_text(fresh)


@needs_node
@session_loop
async def test_answer_shows_confidence_in_words_and_a_short_source(client: EmulatorClient):
    reply = await say(client, 602, "who backs Ahrar al-Sham?")
    text = shown_text(reply)
    # the level follows the served score (the verifier's P(right)); the words and the number are both shown
    assert re.search(r"\n(very sure|fairly sure|somewhat sure|not sure) \(\d{1,3}%\)\n", text), text
    source_line = text.strip().splitlines()[-1]
    assert source_line.startswith("— Syria's opposition") and source_line.endswith("…") and len(source_line) <= 64


@needs_node
@session_loop
async def test_greetings_thanks_and_a_helpful_refusal(client: EmulatorClient):
    assert (await say(client, 603, "hi"))["text"] == GREETING_REPLY
    assert (await say(client, 603, "Thanks!"))["text"] == THANKS_REPLY
    refusal = shown_text(await say(client, 603, "What is the capital of Australia?"))
    assert "The article doesn't say." in refusal and "sure it doesn't" in refusal and "/help" in refusal


# -- groups ---------------------------------------------------------------------------------------------


@needs_node
@session_loop
async def test_group_silence_mention_reply_ask_and_other_bots(client: EmulatorClient):
    await client.send_group(611, GROUP, "lol did anyone watch the game last night?")
    assert await silence(client, GROUP)

    mention = "@TestNameBot"
    await client.send_group(
        611, GROUP, f"{mention} who backs Ahrar al-Sham?", entities=[{"type": "mention", "offset": 0, "length": 12}]
    )
    (answer,) = await client.replies(GROUP)
    assert bold_answer(answer) == "Turkey, Saudi Arabia, and Qatar"

    bot_message = {"message_id": answer["message_id"], "from": BOT_USER, "date": int(time.time()), "text": "…"}
    bot_message["chat"] = {"id": GROUP, "type": "supergroup", "title": "g"}
    await client.send_group(612, GROUP, "What does SOHR stand for?", reply_to=bot_message)
    (replied,) = await client.replies(GROUP)
    assert bold_answer(replied) == "Syrian Observatory for Human Rights"

    ask = "/ask how long did it take to capture the artillery academy?"
    await client.send_group(613, GROUP, ask, entities=[{"type": "bot_command", "offset": 0, "length": 4}])
    (asked,) = await client.replies(GROUP)
    assert "two hours" in bold_answer(asked)

    sticker = {"file_id": "CAACAgIAAxkBAAE", "file_unique_id": "AgADcQADvm8", "type": "regular", "width": 512,
               "height": 512, "is_animated": False, "is_video": False}  # fmt: skip
    await client.send_group(615, GROUP, sticker=sticker)  # a sticker in a group is for the people in it
    for command in ("/start@OtherBot", "/weather"):
        entity = {"type": "bot_command", "offset": 0, "length": len(command)}
        await client.send_group(614, GROUP, command, entities=[entity])
    assert await silence(client, GROUP)


@needs_node
@session_loop
async def test_commands_for_other_bots_are_ignored_in_private_too(client: EmulatorClient):
    await client.send_command(604, "/start@OtherBot")
    assert await silence(client, 604)


# -- buttons and feedback -------------------------------------------------------------------------------


@needs_node
@session_loop
async def test_other_answers_and_votes(client: EmulatorClient, chat_settings: TelegramSettings):
    reply = await say(client, 621, "What is Ahrar al-Sham a coalition of?")
    keys = buttons(reply)
    assert set(keys) == {"Other answers", "👍", "👎"}, keys
    answered_before = len(await client.bot_calls("answerCallbackQuery"))

    await client.press_button(621, reply, keys["Other answers"])
    (others,) = await client.replies(621)
    assert "Other possible answers" in shown_text(others)

    await client.press_button(621, reply, keys["👍"])
    await client.press_button(621, reply, "up:no-such-answer")
    for _ in range(100):
        answers = await client.bot_calls("answerCallbackQuery")
        if len(answers) >= answered_before + 3:
            break
        await asyncio.sleep(0.1)
    assert len(answers) == answered_before + 3  # every press answered, the stale one too
    notices = [call.get("text") for call in answers]
    assert VOTE_THANKS in notices and STALE_BUTTON in notices

    # Clicking again (the same or the other vote) is answered but not counted twice.
    await client.press_button(621, reply, keys["👍"])
    await client.press_button(621, reply, keys["👎"])
    for _ in range(100):
        answers = await client.bot_calls("answerCallbackQuery")
        if len(answers) >= answered_before + 5:
            break
        await asyncio.sleep(0.1)
    assert [call.get("text") for call in answers[-2:]] == [ALREADY_VOTED, ALREADY_VOTED]

    (vote,) = [json.loads(line) for line in Path(chat_settings.feedback_file).read_text().splitlines()]
    assert vote["vote"] == "up" and vote["question"] == "What is Ahrar al-Sham a coalition of?"
    assert vote["answer"] == bold_answer(reply) and set(vote) == {"time", "question", "answer", "vote", "chat"}
    assert "621" not in vote["chat"] and len(vote["chat"]) == 16


# -- the command menu -----------------------------------------------------------------------------------


@needs_node
@session_loop
async def test_command_menu_is_registered(client: EmulatorClient):
    (call,) = await client.bot_calls("setMyCommands")
    assert {"ask", "new", "sources", "help"} <= {command["command"] for command in json.loads(call["commands"])}


@needs_node
@session_loop
async def test_a_failing_command_menu_is_logged_and_the_bot_runs(
    qa_service, chat_settings: TelegramSettings, emulator: Emulator, caplog: pytest.LogCaptureFixture
):
    token = "888888:qabot-menu-fails"
    probe = EmulatorClient(emulator, token)
    await probe.make_fail("setMyCommands")
    try:
        with caplog.at_level(logging.WARNING, logger="bot.telegram_chat"):
            async with bot_and_client(qa_service, token, chat_settings, emulator) as client:
                reply = await say(client, 631, "What does SOHR stand for?")
        assert bold_answer(reply) == "Syrian Observatory for Human Rights"
        assert any("could not register the command menu" in r.getMessage() for r in caplog.records)
    finally:
        await probe.reset_wrapper()
        await probe.aclose()


@needs_node
@session_loop
async def test_telegram_conversations_are_stored_under_a_telegram_key(
    qa_service, chat_settings: TelegramSettings, emulator: Emulator
):
    """The store may be shared with the HTTP API (pgvector): a chat is ``telegram:<id>``, never a bare id that an
    HTTP client could name as its ``conversation_id``."""
    token = "888777:qabot-conversation-keys"
    async with running_bot(qa_service, token, chat_settings) as application:
        client = EmulatorClient(emulator, token)
        try:
            await say(client, 641, "What does SOHR stand for?")
        finally:
            await client.aclose()
        store = application.bot_data[ANSWERER_KEY].store  # the LocalAnswerer's
        assert [turn.question for turn in store.get("telegram:641")] == ["What does SOHR stand for?"]
        assert store.get("641") == []


# -- typing only when slow ------------------------------------------------------------------------------


class RecordingBot:
    """Stands in for telegram.Bot's send_chat_action only (the Telegram library, not our code)."""

    def __init__(self) -> None:
        self.actions: list[tuple[int, str]] = []

    async def send_chat_action(self, chat_id: int, action: str) -> None:
        self.actions.append((chat_id, action))


@session_loop
async def test_typing_is_shown_only_when_the_answer_is_slow():
    bot = RecordingBot()

    async def answer_after(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    assert await with_typing(answer_after(0.01), bot, 1, delay=0.3) == "done"
    assert bot.actions == []
    assert await with_typing(answer_after(0.5), bot, 2, delay=0.1) == "done"
    assert bot.actions == [(2, "typing")]


