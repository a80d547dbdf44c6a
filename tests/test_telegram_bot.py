"""The Telegram bot end to end (real Application, real QAService, telegram-test-api emulator) and its parts.

The end-to-end tests run python-telegram-bot's Application inside the test's event loop, long polling the
emulator that ``tests/telegram_emulator/harness.py`` starts; users are played through the emulator's client
API. They are skipped only when ``node`` is not on PATH (the harness installs the emulator itself if needed).
The emulator does not implement ``sendChatAction``; the typing status is shown only for slow answers
(tests/test_telegram_chat.py checks both).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from telegram.ext import Application

from bot.answer_batcher import AnswerBatcher
from bot.articles import ArticleInfo
from bot.config import PROJECT_ROOT, TelegramSettings, with_overrides
from bot.errors import (
    EmptyQuestionError,
    InvalidQuestionError,
    QabotError,
    QuestionNotTextError,
    QuestionTooLongError,
)
from bot.rendering import NO_ANSWER_TEXT
from bot.telegram_bot import (
    APOLOGY,
    NON_TEXT_HINT,
    UNKNOWN_COMMAND,
    BotSetupError,
    build_application,
    file_base_url,
    help_messages,
    webhook_arguments,
)
from bot.telegram_replies import EMPTY_QUESTION, question_problem
from bot.telegram_token import REDACTED, TokenRedactingFilter, read_token
from tests.telegram_emulator.harness import Emulator, EmulatorClient, node_available, reply_target, running_emulator

TOKEN = "123456789:qabot-e2e-SECRET-token_do-not-log"
FLAGSHIP_QUESTION = "who backs Ahrar al-Sham?"
FLAGSHIP_ANSWER = "Turkey, Saudi Arabia, and Qatar"
# Questions with different answers, asked from different chats at once: a mixed-up reply cannot pass.
CHAT_QUESTIONS = {
    201: ("Who backs Ahrar al-Sham?", "Turkey, Saudi Arabia, and Qatar"),
    202: ("What does SOHR stand for?", "Syrian Observatory for Human Rights"),
    203: ("Where did the aid convoy carrying food into the rebel-held east come from?", "Idlib"),
    204: ("How long did it take to capture the artillery academy?", "two hours"),
    205: (
        "What did Syrian government forces say they delivered to neighbourhoods under their control?",
        "food and fuel",
    ),
}

needs_node = pytest.mark.skipif(
    not node_available(),
    reason="node is not on PATH: the Telegram end-to-end tests need the telegram-test-api emulator",
)
session_loop = pytest.mark.asyncio(loop_scope="session")


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture(scope="session")
def emulator_settings(emulator: Emulator, qa_service) -> TelegramSettings:
    """The shipped Telegram settings, pointed at the emulator."""
    return with_overrides(qa_service.settings.telegram, {"base_url": emulator.bot_api_url})


@contextlib.asynccontextmanager
async def running_bot(service: Any, token: str, settings: TelegramSettings) -> AsyncIterator[Application]:
    """The bot from ``build_application``, started and stopped the way ``run_polling`` does it, in this loop."""
    application = build_application(service, token, settings)
    await application.initialize()
    await application.post_init(application)  # type: ignore[misc]
    # The emulator answers getUpdates at once (no long poll): a short pause keeps the loop from spinning.
    await application.updater.start_polling(poll_interval=0.05)  # type: ignore[union-attr]
    await application.start()
    try:
        yield application
    finally:
        await application.updater.stop()  # type: ignore[union-attr]
        await application.stop()
        await application.shutdown()
        await application.post_shutdown(application)  # type: ignore[misc]


@contextlib.asynccontextmanager
async def bot_and_client(service: Any, token: str, settings: TelegramSettings, emulator: Emulator):
    async with running_bot(service, token, settings):
        client = EmulatorClient(emulator, token)
        try:
            yield client
        finally:
            await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(qa_service, emulator_settings: TelegramSettings, emulator: Emulator) -> AsyncIterator[EmulatorClient]:
    """One running bot (real service, real index) for the module, and a client to talk to it."""
    async with bot_and_client(qa_service, TOKEN, emulator_settings, emulator) as talking:
        yield talking


async def ask(client: EmulatorClient, user_id: int, text: str) -> dict[str, Any]:
    """Send ``text`` from ``user_id`` and return the bot's one reply, after checking it quotes the question."""
    await client.send_text(user_id, text)
    (reply,) = await client.replies(user_id)
    assert reply_target(reply) == await client.user_message_id(user_id, text)
    return reply


def shown_text(reply: dict[str, Any]) -> str:
    """What the user reads: the HTML without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", reply["text"]))


def bold_answer(reply: dict[str, Any]) -> str:
    match = re.search(r"<b>(.*?)</b>", reply["text"], re.S)
    assert match, reply["text"]
    return html.unescape(match.group(1))


# -- end to end -----------------------------------------------------------------------------------------


@needs_node
@session_loop
@pytest.mark.parametrize("command", ["/start", "/help"])
async def test_start_and_help_name_the_article(client: EmulatorClient, qa_service, command: str):
    user_id = 101 if command == "/start" else 102
    await client.send_command(user_id, command)
    (reply,) = await client.replies(user_id)
    assert reply["parse_mode"] == "HTML"
    assert reply_target(reply) == await client.user_message_id(user_id, command)
    text = shown_text(reply)
    assert "I answer questions about news articles" in text
    (article,) = qa_service.articles()
    assert article.title in text


@needs_node
@session_loop
async def test_sources_lists_articles_with_source_and_date(client: EmulatorClient):
    await client.send_command(103, "/sources")
    (reply,) = await client.replies(103)
    assert reply["parse_mode"] == "HTML"
    assert reply_target(reply) == await client.user_message_id(103, "/sources")  # quoted, like /help
    text = shown_text(reply)
    assert "Syria's opposition is on the verge" in text
    assert "Business Insider, 2016" in text


@needs_node
@session_loop
async def test_flagship_question(client: EmulatorClient):
    reply = await ask(client, 104, FLAGSHIP_QUESTION)
    assert reply["parse_mode"] == "HTML"
    assert FLAGSHIP_ANSWER in html.unescape(reply["text"])
    assert bold_answer(reply) == FLAGSHIP_ANSWER


@needs_node
@session_loop
async def test_unrelated_question_says_the_article_does_not_say(client: EmulatorClient):
    reply = await ask(client, 105, "What is the capital of Australia?")
    assert NO_ANSWER_TEXT in html.unescape(reply["text"])


@needs_node
@session_loop
async def test_several_chats_at_once_each_get_their_own_answer(client: EmulatorClient):
    await asyncio.gather(*(client.send_text(chat, question) for chat, (question, _) in CHAT_QUESTIONS.items()))
    replies = await asyncio.gather(*(client.replies(chat) for chat in CHAT_QUESTIONS))
    for (chat, (question, expected)), (reply,) in zip(CHAT_QUESTIONS.items(), replies, strict=True):
        assert expected in bold_answer(reply), (chat, question, reply["text"])
        assert reply_target(reply) == await client.user_message_id(chat, question)


@needs_node
@session_loop
@pytest.mark.parametrize(
    "content",
    [
        {
            "sticker": {
                "file_id": "CAACAgIAAxkBAAE",
                "file_unique_id": "AgADcQADvm8",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "👍",
            }
        },
        {"photo": [{"file_id": "AgACAgIAAxkBAAI", "file_unique_id": "AQADm7", "width": 90, "height": 60}]},
        {"voice": {"file_id": "AwACAgIAAxkBAAI", "file_unique_id": "AgADvA", "duration": 3}},
    ],
    ids=["sticker", "photo", "voice"],  # documents are articles to add: tests/test_telegram_articles.py
)
async def test_non_text_messages_get_a_hint(client: EmulatorClient, content: dict[str, Any]):
    user_id = 110 + ["sticker", "photo", "voice"].index(next(iter(content)))  # one chat per kind
    await client.send(user_id, **content)
    (reply,) = await client.replies(user_id)
    assert reply["text"] == NON_TEXT_HINT


@needs_node
@session_loop
async def test_over_long_question_is_refused_with_the_limit(client: EmulatorClient, qa_service):
    question = ("Who backs Ahrar al-Sham and why? " * 50)[:1499] + "?"
    assert len(" ".join(question.split())) == 1500 and qa_service.settings.answers.max_question_chars == 1000
    reply = await ask(client, 120, question)
    assert "too long" in reply["text"] and "1,500 characters" in reply["text"] and "limit is 1,000" in reply["text"]
    await asyncio.sleep(0.3)
    assert await client.new_replies(120) == []  # no answer follows the refusal


@needs_node
@session_loop
async def test_question_over_the_readers_token_window_is_refused_while_others_are_answered(client: EmulatorClient):
    """Issue 9, items 1 and 3: 998 characters but ~500 tokens, sent together with normal questions."""
    bad_user, good_users = 123, [124, 125, 126]
    await asyncio.gather(
        client.send_text(bad_user, "a " * 499), *(client.send_text(user, FLAGSHIP_QUESTION) for user in good_users)
    )
    (refusal,) = await client.replies(bad_user)
    assert "too long" in refusal["text"] and "Please ask something shorter" in refusal["text"]
    for user in good_users:
        (reply,) = await client.replies(user)
        assert bold_answer(reply) == FLAGSHIP_ANSWER


@needs_node
@session_loop
@pytest.mark.parametrize("text", ["   \n\t  ", "\x00\x01 \x7f"], ids=["white-space", "control-characters"])
async def test_empty_question_is_refused(client: EmulatorClient, text: str):
    user_id = 121 if text.isspace() else 122
    reply = await ask(client, user_id, text)
    assert reply["text"] == EMPTY_QUESTION


@needs_node
@session_loop
async def test_unknown_command(client: EmulatorClient):
    await client.send_command(123, "/weather tomorrow")
    (reply,) = await client.replies(123)
    assert reply["text"] == UNKNOWN_COMMAND


class ServiceProxy:
    """The real service behind the bot-facing part of its contract; subclasses change ``answer_many``."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self.settings = service.settings

    def articles(self) -> list[ArticleInfo]:
        return self._service.articles()

    def validate_question(self, question: str) -> str:
        return self._service.validate_question(question)

    def answer_many(self, questions: list[str]) -> list[Any]:
        return self._service.answer_many(questions)


class CountingService(ServiceProxy):
    """Counts the model calls the bot makes."""

    def __init__(self, service: Any) -> None:
        super().__init__(service)
        self.batches: list[list[str]] = []

    def answer_many(self, questions: list[str]) -> list[Any]:
        self.batches.append(list(questions))
        return super().answer_many(questions)


@needs_node
@session_loop
async def test_questions_arriving_together_share_model_calls(
    qa_service, emulator_settings: TelegramSettings, emulator: Emulator
):
    """Five chats' questions waiting when the bot polls are answered in fewer than five service calls."""
    token = "24680:batching-bot-token"
    service = CountingService(qa_service)
    waiting = EmulatorClient(emulator, token)
    try:
        for chat, (question, _) in CHAT_QUESTIONS.items():
            await waiting.send_text(chat, question)
    finally:
        await waiting.aclose()
    async with bot_and_client(service, token, emulator_settings, emulator) as client:
        replies = await asyncio.gather(*(client.replies(chat) for chat in CHAT_QUESTIONS))
    for (_, expected), (reply,) in zip(CHAT_QUESTIONS.values(), replies, strict=True):
        assert expected in bold_answer(reply)
    assert sorted(q for batch in service.batches for q in batch) == sorted(q for q, _ in CHAT_QUESTIONS.values())
    assert len(service.batches) < len(CHAT_QUESTIONS), service.batches


class ExplodingService(ServiceProxy):
    """Fails unexpectedly on any question with 'explode' in it."""

    def answer_many(self, questions: list[str]) -> list[Any]:
        if any("explode" in question for question in questions):
            raise RuntimeError("the reader blew up")
        return super().answer_many(questions)


@needs_node
@session_loop
async def test_an_unexpected_error_gets_an_apology_and_the_bot_goes_on(
    qa_service, emulator_settings: TelegramSettings, emulator: Emulator, caplog: pytest.LogCaptureFixture
):
    token = "987654321:exploding-bot-token"
    async with bot_and_client(ExplodingService(qa_service), token, emulator_settings, emulator) as client:
        await client.send_text(301, "please explode")
        (reply,) = await client.replies(301)
        assert reply["text"] == APOLOGY
        assert any(record.exc_info and "the reader blew up" in str(record.exc_info[1]) for record in caplog.records)
        reply = await ask(client, 301, FLAGSHIP_QUESTION)
        assert bold_answer(reply) == FLAGSHIP_ANSWER


@needs_node
@session_loop
async def test_token_never_appears_in_logs(
    qa_service, emulator_settings: TelegramSettings, emulator: Emulator, caplog: pytest.LogCaptureFixture
):
    """A bot started while pytest captures everything at DEBUG, httpx forced back to INFO (it logs each URL)."""
    caplog.set_level(logging.DEBUG)
    token = "555555555:another-SECRET-token_for-the-log-test"
    httpx_logger = logging.getLogger("httpx")
    async with bot_and_client(qa_service, token, emulator_settings, emulator) as client:
        assert httpx_logger.level == logging.WARNING  # build_application silenced the per-request lines
        httpx_logger.setLevel(logging.INFO)
        try:
            await client.send_command(401, "/start")
            await client.replies(401)
            reply = await ask(client, 401, FLAGSHIP_QUESTION)
            assert bold_answer(reply) == FLAGSHIP_ANSWER
        finally:
            httpx_logger.setLevel(logging.WARNING)
    assert any(record.name == "httpx" and REDACTED in record.getMessage() for record in caplog.records)
    assert token not in caplog.text
    assert all(token not in record.getMessage() for record in caplog.records)


@needs_node
@session_loop
async def test_cli_runs_the_bot_and_keeps_the_token_out_of_its_log(
    service_settings, emulator: Emulator, tmp_path: Path
):
    """``qabot telegram`` as a user starts it: token and base URL from the environment, INFO logging on stderr."""
    token = "13579:cli-SECRET-token"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"index_dir": str(service_settings.index_dir)}), encoding="utf-8")
    environ = {**os.environ, "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_BASE_URL": emulator.bot_api_url}
    log_file = tmp_path / "bot.log"
    with log_file.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "telegram", "--config", str(config)],
            cwd=PROJECT_ROOT,
            env=environ,
            stdout=stderr,
            stderr=subprocess.STDOUT,
        )
        client = EmulatorClient(emulator, token)
        try:
            await client.send_command(501, "/start")
            (reply,) = await client.replies(501, timeout=180)
            assert "I answer questions about news articles" in shown_text(reply)
        finally:
            await client.aclose()
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    output = log_file.read_text(encoding="utf-8")
    assert "Application started" in output and "long polling" in output
    assert token not in output


# -- parts ----------------------------------------------------------------------------------------------


def test_read_token():
    assert read_token({"TELEGRAM_BOT_TOKEN": "  123:abc-DEF_9\n"}) == "123:abc-DEF_9"


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is not set"),
        ({"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN is not set"),
        ({"TELEGRAM_BOT_TOKEN": " \t\n"}, "TELEGRAM_BOT_TOKEN is not set"),
        ({"TELEGRAM_BOT_TOKEN": "123:abc def"}, "white space"),
    ],
)
def test_read_token_errors(environ: dict[str, str], says: str):
    with pytest.raises(BotSetupError) as raised:
        read_token(environ)
    assert isinstance(raised.value, QabotError)
    assert says in str(raised.value)
    assert "abc def" not in str(raised.value)


def test_redacting_filter_covers_message_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture):
    logger = logging.getLogger("tests.redaction")
    logger.addFilter(TokenRedactingFilter(TOKEN))
    try:
        logger.warning("POST %s failed", f"http://x/bot{TOKEN}/getMe")
        try:
            raise ConnectionError(f"cannot reach http://x/bot{TOKEN}/getUpdates")
        except ConnectionError:
            logger.exception("polling failed")
    finally:
        logger.filters.clear()
    assert TOKEN not in caplog.text
    assert caplog.text.count(REDACTED) == 2


def user_facing_question(service, text: str) -> str:
    """What the chat front ends do with a message: the service's rule, its refusal in the user's words."""
    try:
        return service.validate_question(text)
    except InvalidQuestionError as error:
        raise InvalidQuestionError(question_problem(error)) from error


def test_question_rule_in_the_users_words(qa_service):
    assert user_facing_question(qa_service, "  who\n backs\x00 them? ") == "who backs them?"
    with pytest.raises(InvalidQuestionError, match="no question"):
        user_facing_question(qa_service, " \n")
    with pytest.raises(InvalidQuestionError, match="too long: 1,001 characters; the limit is 1,000"):
        user_facing_question(qa_service, "x" * 1001)
    assert user_facing_question(qa_service, "x" * 1000) == "x" * 1000
    # The service's token rule too: 998 characters, but over the reader's window (issue 9, item 1).
    with pytest.raises(InvalidQuestionError, match=r"too long: \d+ words and word pieces; the limit is \d+\. Please"):
        user_facing_question(qa_service, "a " * 499)


def test_the_refusal_is_worded_by_the_kind_of_error_not_by_its_text():
    """Each rule's error type gets its own words, whatever the rule's message says (wordings change)."""
    assert question_problem(EmptyQuestionError("nothing left to ask")) == EMPTY_QUESTION
    assert (
        question_problem(QuestionTooLongError("over the limit; an empty line would do"))
        == "Sorry, I can't answer that: over the limit; an empty line would do. Please ask something shorter."
    )
    assert question_problem(QuestionNotTextError("not text")) == "Sorry, I can't answer that: not text."
    assert question_problem(InvalidQuestionError("the question is empty")) != EMPTY_QUESTION  # no kind, no guess


def test_help_escapes_titles_and_stays_short():
    articles = [ArticleInfo(article_id=f"a{i}", title=f"<Title {i}> & co", source="S", date=None) for i in range(25)]
    (help_text,) = help_messages(articles)
    assert "&lt;Title 0&gt; &amp; co" in help_text and "Title 10>" not in help_text and "15 more" in help_text
    assert "No article is indexed yet." in help_messages([])[0]


def test_file_base_url():
    assert file_base_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_base_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"


def test_webhook_needs_a_url_and_hides_the_token():
    with pytest.raises(ValueError, match="webhook_url"):
        TelegramSettings(mode="webhook")
    with pytest.raises(BotSetupError, match="webhook_url"):
        webhook_arguments(TelegramSettings().model_copy(update={"mode": "webhook"}), TOKEN)
    settings = TelegramSettings(mode="webhook", webhook_url="https://bot.example.org/qabot/hook", webhook_port=8443)
    try:
        arguments = webhook_arguments(settings, TOKEN)
    except BotSetupError as error:  # python-telegram-bot[webhooks] not installed: the message says what to do
        assert "python-telegram-bot[webhooks]" in str(error)
        return
    assert arguments["url_path"] == "qabot/hook" and arguments["port"] == 8443
    secret = arguments["secret_token"]
    # Telegram's rule for the header (1-256 of A-Z a-z 0-9 _ -): a token, with its ":", could not pass.
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret)
    assert TOKEN.split(":")[1] not in secret
    # Stable across restarts, and not one constant for every bot (then anyone could forge updates).
    assert webhook_arguments(settings, TOKEN)["secret_token"] == secret
    assert webhook_arguments(settings, "111:another-token")["secret_token"] != secret


# -- the micro-batcher ----------------------------------------------------------------------------------


class RecordingAnswerer:
    """A real, blocking ``answer_many``: upper-cases each question, records every batch and its thread."""

    def __init__(self, delay: float = 0.02, fail_with: Exception | None = None) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.delay = delay
        self.fail_with = fail_with
        self.lock = threading.Lock()

    def __call__(self, questions: list[str]) -> list[str]:
        with self.lock:
            self.batches.append(list(questions))
            self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        return [question.upper() for question in questions]


@session_loop
async def test_batcher_gathers_concurrent_asks_and_routes_results():
    answerer = RecordingAnswerer()
    batcher = AnswerBatcher(answerer, window=0.02, workers=2)
    try:
        questions = [f"question {i}" for i in range(16)]
        answers = await asyncio.gather(*(batcher.ask(q) for q in questions))
    finally:
        batcher.close()
    assert answers == [q.upper() for q in questions]
    assert len(answerer.batches) < len(questions)
    assert sorted(q for batch in answerer.batches for q in batch) == sorted(questions)
    assert threading.current_thread().name not in answerer.threads  # the event loop never ran the model


@session_loop
async def test_batcher_exception_reaches_every_waiting_caller():
    batcher = AnswerBatcher(RecordingAnswerer(fail_with=ValueError("model failed")), window=0.01)
    try:
        results = await asyncio.gather(*(batcher.ask(f"q{i}") for i in range(5)), return_exceptions=True)
    finally:
        batcher.close()
    assert len(results) == 5
    assert all(isinstance(result, ValueError) and str(result) == "model failed" for result in results)


@session_loop
async def test_batcher_keeps_gathering_while_workers_are_busy():
    """With the only worker busy, later questions wait together and go as one batch when it is free."""
    answerer = RecordingAnswerer(delay=0.2)
    batcher = AnswerBatcher(answerer, window=0, workers=1)
    try:
        first = asyncio.ensure_future(batcher.ask("first"))
        await asyncio.sleep(0.05)
        rest = await asyncio.gather(*(batcher.ask(f"later {i}") for i in range(4)))
        assert await first == "FIRST"
    finally:
        batcher.close()
    assert rest == [f"LATER {i}" for i in range(4)]
    assert answerer.batches == [["first"], [f"later {i}" for i in range(4)]]


@session_loop
async def test_batcher_limits_the_batch_size():
    answerer = RecordingAnswerer(delay=0)
    batcher = AnswerBatcher(answerer, window=10, workers=1, max_batch=3)  # a full batch does not wait the window
    try:
        answers = await asyncio.wait_for(asyncio.gather(*(batcher.ask(str(i)) for i in range(6))), timeout=5)
    finally:
        batcher.close()
    assert answers == [str(i) for i in range(6)]
    assert [len(batch) for batch in answerer.batches] == [3, 3]


@session_loop
async def test_batcher_survives_a_cancelled_caller_and_a_wrong_result_count():
    batcher = AnswerBatcher(RecordingAnswerer(delay=0.05), window=0.01)
    try:
        gone = asyncio.ensure_future(batcher.ask("gone"))
        kept = asyncio.ensure_future(batcher.ask("kept"))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == "KEPT"
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.ask("too late")

    short = AnswerBatcher(lambda questions: questions[:1], window=0.01)
    try:
        results = await asyncio.gather(short.ask("a"), short.ask("b"), return_exceptions=True)
    finally:
        short.close()
    assert all(isinstance(result, RuntimeError) and "2 questions" in str(result) for result in results)


@session_loop
async def test_batcher_one_bad_question_fails_alone():
    """Issue 9, item 3: after a batch raises, its questions are asked one by one; only the bad one fails."""
    batches: list[list[str]] = []

    def answer_many(questions: list[str]) -> list[str]:
        batches.append(list(questions))
        if "bad" in questions:
            raise InvalidQuestionError("cannot read this one")
        return [question.upper() for question in questions]

    batcher = AnswerBatcher(answer_many, window=0.05, workers=1)
    try:
        questions = [f"q{i}" for i in range(5)] + ["bad"] + [f"q{i}" for i in range(5, 10)]
        results = await asyncio.gather(*(batcher.ask(q) for q in questions), return_exceptions=True)
    finally:
        batcher.close()
    assert results[:5] + results[6:] == [q.upper() for q in questions if q != "bad"]
    assert isinstance(results[5], InvalidQuestionError) and str(results[5]) == "cannot read this one"
    assert batches[0] == questions and sorted(map(tuple, batches[1:])) == sorted((q,) for q in questions)


@session_loop
async def test_batcher_with_the_real_service_fails_only_the_question_the_reader_cannot_take(qa_service):
    """The real QAService refuses a whole batch over one question too long in tokens; the others still get answers."""
    batcher = AnswerBatcher(qa_service.answer_many, window=0.05, workers=1)
    questions = [question for question, _ in CHAT_QUESTIONS.values()]
    try:
        results = await asyncio.gather(
            *(batcher.ask(q) for q in [*questions[:2], "a " * 499, *questions[2:]]), return_exceptions=True
        )
    finally:
        batcher.close()
    assert isinstance(results[2], InvalidQuestionError) and "too long" in str(results[2])
    assert [answer.text for answer in results[:2] + results[3:]] == [answer for _, answer in CHAT_QUESTIONS.values()]
