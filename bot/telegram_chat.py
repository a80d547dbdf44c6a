"""The bot as a chat partner: conversation memory, group manners, answer buttons, feedback, small talk.

Kept apart from ``bot.telegram_bot`` (transport, start-up, the application factory), which registers these
handlers with ``register_chat_handlers`` and prepares their state with ``prepare_chat_state`` in ``post_init``.

* Memory: one conversation per chat (``bot.conversation``): "who backs it?" after "what is Ahrar al-Sham?";
  ``/new`` forgets. The reply says how a rewritten question was read ("reading ‘it’ as Ahrar al-Sham").
* Groups and supergroups: the bot answers only when @mentioned (the mention is removed from the question),
  when a message replies to one of its messages, or to ``/ask <question>``; it stays silent otherwise and
  ignores commands addressed to other bots (``/start@OtherBot``).
* Buttons under an answer: "Other answers" (the runner-ups) and 👍 / 👎. Every callback query is answered
  (Telegram shows a spinner until it is). One vote per answer and user; votes are appended to a JSON-lines
  file: question, answer, vote, time and a salted hash of the chat id — no names, nothing that identifies a
  person without the salt.
* Typing status only when an answer takes longer than ``TYPING_DELAY_S``: most answers take ~50 ms, and
  each ``sendChatAction`` is one more call under Telegram's per-chat rate limit.
* One answering path, two places it runs (``ChatAnswerer``): ``LocalAnswerer`` answers in this process (the
  ``QAService`` through an ``AnswerBatcher``, conversations in ``bot.stores.conversation_store``);
  ``bot.serve_client.ServeClient`` forwards to ``qabot serve`` workers (``telegram.answer_url``), which resolve
  follow-ups from the shared store. The handlers below do not know which one they talk to.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot.articles import url_of
from bot.conversation import ConversationStore, describe, resolved_batcher, take_turn
from bot.errors import InvalidQuestionError
from bot.rendering import REFUSAL_HINT, render_alternatives_html, render_telegram_html
from bot.serve_client import WORKERS_DOWN, ChatReply, WorkersUnavailableError
from bot.telegram_articles import chat_scope
from bot.telegram_replies import question_problem, reply_to, show_typing

if TYPE_CHECKING:
    from bot.answer import Answer
    from bot.answering import ArticleScope, QAService
    from bot.articles import ArticleInfo

log = logging.getLogger(__name__)

ANSWERER_KEY = "answerer"
FEEDBACK_KEY = "feedback"
RECENT_KEY = "recent_answers"
TYPING_DELAY_S = 1.0
RECENT_ANSWERS = 2_000  # answers whose buttons still work (older ones say "ask again")
BOT_COMMANDS = (
    ("ask", "ask a question (in groups: /ask who backs Ahrar al-Sham?)"),
    ("new", "forget the conversation and start a new topic"),
    ("sources", "the articles I know"),
    ("help", "what I can do"),
)

ASK_USAGE = "Put the question after the command, e.g. /ask who backs Ahrar al-Sham?"
NEW_CONVERSATION = "Okay, a new conversation: I have forgotten the earlier questions."
GREETING_REPLY = "Hi! Ask me a question about the article — /help shows which one."
THANKS_REPLY = "You're welcome! Ask me anything else about the article."
STALE_BUTTON = "That answer is too old for its buttons; please ask again."
VOTE_THANKS = "Thanks for the feedback!"
ALREADY_VOTED = "Your vote on this answer is already counted."
REFUSAL_HELP = f"{REFUSAL_HINT} /help shows the article; /new starts a new topic."

_GREETING = re.compile(r"^(hi|hello|hey|hallo|hiya|good (morning|afternoon|evening)|greetings)( there| bot)?\W*$", re.I)
_THANKS = re.compile(r"^(thanks|thank you|thx|ty|cheers|many thanks|thanks a lot)( (a lot|so much|bot))?\W*$", re.I)

T = TypeVar("T")


# -- where answers come from ----------------------------------------------------------------------------


class ChatAnswerer(Protocol):
    """What the chat handlers need to answer: ``LocalAnswerer`` here, or ``bot.serve_client.ServeClient``.

    ``ask`` raises ``InvalidQuestionError`` (the reason, for ``question_problem``) or, when the answering side
    cannot be reached, ``WorkersUnavailableError``.
    """

    def conversation_id(self, chat_id: int) -> str: ...

    async def ask(self, question: str, conversation_id: str | None, scope: ArticleScope = None) -> ChatReply: ...

    async def reset(self, conversation_id: str) -> None: ...

    async def articles(self) -> list[ArticleInfo]: ...

    async def aclose(self) -> None: ...


class LocalAnswerer:
    """Answers in this process: validate → resolve the follow-up → ``QAService`` (batched across chats) → remember.

    Inference runs in ``workers`` threads of an ``AnswerBatcher`` so the event loop stays free; questions from
    several chats arriving within ``window`` seconds share one ``answer_many`` call.
    """

    def __init__(self, service: QAService, store: ConversationStore, window: float, workers: int) -> None:
        self.service, self.store = service, store
        self._batcher = resolved_batcher(service, window, workers)

    def conversation_id(self, chat_id: int) -> str:
        return telegram_conversation_id(chat_id)

    async def ask(self, question: str, conversation_id: str | None, scope: ArticleScope = None) -> ChatReply:
        answer, resolved = await take_turn(
            question,
            validate=self.service.validate_question,  # before the batch: one bad question fails alone
            store=self.store,
            conversation_id=conversation_id,
            scope=scope,
            answer=lambda resolved, in_scope: self._batcher.ask((resolved, in_scope)),
        )
        return ChatReply(answer, describe(resolved))

    async def reset(self, conversation_id: str) -> None:
        await asyncio.to_thread(self.store.reset, conversation_id)

    async def articles(self) -> list[ArticleInfo]:
        return self.service.articles()

    async def aclose(self) -> None:
        self._batcher.close()


# -- state ----------------------------------------------------------------------------------------------


class FeedbackLog:
    """Append-only JSON lines of votes; safe for the bot's threads and handlers (one lock, one write each).

    At most one vote per (answer, user): a second click on 👍 or 👎 would otherwise count twice. The votes seen
    are remembered for as long as an answer's buttons work (``RECENT_ANSWERS`` answers), in memory like them.
    """

    def __init__(self, path: Path, salt: str, remember: int = RECENT_ANSWERS * 4) -> None:
        self.path = path
        self._salt = salt
        self._lock = threading.Lock()
        self._voted: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._remember = remember

    def chat_hash(self, chat_id: int) -> str:
        return hashlib.sha256(f"{self._salt}:{chat_id}".encode()).hexdigest()[:16]

    def record(self, answer_key: str, user_id: int, question: str, answer: str | None, vote: str, chat_id: int) -> bool:
        """Write the vote; False (nothing written) when this user already voted on this answer."""
        line = json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "question": question,
                "answer": answer,
                "vote": vote,
                "chat": self.chat_hash(chat_id),
            },
            ensure_ascii=False,
        )
        with self._lock:
            if (answer_key, user_id) in self._voted:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line + "\n")
            self._voted[(answer_key, user_id)] = None
            while len(self._voted) > self._remember:
                self._voted.popitem(last=False)
            return True


def prepare_chat_state(bot_data: dict[str, Any], answerer: ChatAnswerer, feedback_file: Path, salt: str) -> None:
    """The chat handlers' shared state (called from ``post_init``).

    The buttons' answers (``RECENT_KEY``) and the votes already counted stay in this process's memory, also when
    the answers come from workers: there is one bot process (Telegram delivers each update to one webhook),
    losing them on a restart only makes old buttons say "ask again", and the votes themselves are on disk.
    """
    bot_data[ANSWERER_KEY] = answerer
    bot_data[FEEDBACK_KEY] = FeedbackLog(feedback_file, salt)
    bot_data[RECENT_KEY] = OrderedDict()


async def register_commands(application: Application) -> None:
    """The command menu; a failure (network, an API server without the method) is logged, never fatal."""
    try:
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in BOT_COMMANDS])
    except TelegramError as error:
        log.warning("could not register the command menu (set_my_commands): %s", error)


def telegram_conversation_id(chat_id: int) -> str:
    """A chat's key in the conversation store, shared with the HTTP API (``http:<id>``) under the pgvector
    backend: the prefix keeps an HTTP client from ever reading or continuing a Telegram chat."""
    return f"telegram:{chat_id}"


# -- who is talking to whom -----------------------------------------------------------------------------


def is_group(message: Message) -> bool:
    return message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def addressed_question(message: Message, bot_username: str, bot_id: int) -> str | None:
    """The question a message asks the bot, or None when a group message is not for the bot.

    Private chat: the whole text. Group: the text without the bot's @mention when mentioned, or the whole
    text when it replies to one of the bot's messages.
    """
    text = message.text or ""
    if not is_group(message):
        return text
    mention = f"@{bot_username}".casefold()
    mentions = [
        entity
        for entity, value in message.parse_entities([MessageEntity.MENTION]).items()
        if value.casefold() == mention
    ]
    if mentions:
        for entity in sorted(mentions, key=lambda e: e.offset, reverse=True):
            text = text[: entity.offset] + text[entity.offset + entity.length :]
        return " ".join(text.split()).strip(" ,:")
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return text
    return None


def command_for_us(message: Message, bot_username: str) -> bool:
    """False for ``/start@OtherBot``, and for a bare unknown command in a group (it may be another bot's)."""
    command = (message.text or "").split(maxsplit=1)[0] if message.text else ""
    if "@" in command:
        return command.split("@", 1)[1].casefold() == bot_username.casefold()
    return not is_group(message)


def small_talk_reply(text: str) -> str | None:
    """A short answer to a greeting or thanks (not a question about the article), else None."""
    text = text.strip()
    if _GREETING.match(text):
        return GREETING_REPLY
    if _THANKS.match(text):
        return THANKS_REPLY
    return None


# -- answering ------------------------------------------------------------------------------------------


async def with_typing(work: Awaitable[T], bot: Any, chat_id: int, delay: float = TYPING_DELAY_S) -> T:
    """Await ``work``; show 'typing…' only if it is not done within ``delay`` seconds."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=delay)
    if not done:
        await show_typing(bot, chat_id)
    return await task


def _keyboard(key: str, answer: Answer) -> InlineKeyboardMarkup:
    votes = [
        InlineKeyboardButton("👍", callback_data=f"up:{key}"),
        InlineKeyboardButton("👎", callback_data=f"down:{key}"),
    ]
    rows = [[InlineKeyboardButton("Other answers", callback_data=f"alt:{key}")]] if answer.alternatives else []
    return InlineKeyboardMarkup([*rows, votes])


def _remember_answer(bot_data: dict[str, Any], chat_id: int, answer: Answer) -> str:
    recent: OrderedDict[str, tuple[int, Answer]] = bot_data[RECENT_KEY]
    key = hashlib.sha256(f"{chat_id}:{len(recent)}:{id(answer)}:{answer.question}".encode()).hexdigest()[:12]
    recent[key] = (chat_id, answer)
    while len(recent) > RECENT_ANSWERS:
        recent.popitem(last=False)
    return key


async def _article_url(answerer: ChatAnswerer, article_id: str) -> str | None:
    """The link under an answer; best effort (an answer is never held back for its link)."""
    try:
        return url_of(await answerer.articles(), article_id)
    except WorkersUnavailableError:
        return None


async def answer_in_chat(message: Message, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Answer ``text`` as the next turn of this chat's conversation (here or at the workers: ``ChatAnswerer``)."""
    answerer: ChatAnswerer = context.bot_data[ANSWERER_KEY]
    chitchat = small_talk_reply(text)  # a greeting is short: it always passes validation, so check it first
    if chitchat:
        await reply_to(message, [chitchat])
        return
    try:
        scope = await chat_scope(context, message.chat_id)  # the articles this chat may be answered from
        asked = answerer.ask(text, answerer.conversation_id(message.chat_id), scope)
        reply = await with_typing(asked, context.bot, message.chat_id)
    except InvalidQuestionError as error:
        await reply_to(message, [question_problem(error)])
        return
    except WorkersUnavailableError as error:
        log.warning("no answer for chat %s: %s", message.chat_id, error)
        await reply_to(message, [WORKERS_DOWN])
        return
    answer = reply.answer
    if not answer.answered:
        await reply_to(message, render_telegram_html(answer, note=reply.reading, hint=REFUSAL_HELP), as_html=True)
        return
    key = _remember_answer(context.bot_data, message.chat_id, answer)
    url = await _article_url(answerer, answer.source.article_id) if answer.source else None
    rendered = render_telegram_html(answer, note=reply.reading, url=url)
    await reply_to(message, rendered, as_html=True, markup=_keyboard(key, answer))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message: a question in a private chat; in a group only when it is addressed to the bot."""
    message = update.effective_message
    if message is None:
        return
    question = addressed_question(message, context.bot.username, context.bot.id)
    if question is None:
        return  # group chatter not meant for the bot
    await answer_in_chat(message, context, question)


async def ask_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/ask <question>``: works in groups and private chats alike."""
    message = update.effective_message
    if message is None:
        return
    question = " ".join(context.args or [])
    if not question.strip():
        await reply_to(message, [ASK_USAGE])
        return
    await answer_in_chat(message, context, question)


async def new_conversation(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    answerer: ChatAnswerer = context.bot_data[ANSWERER_KEY]
    try:
        await answerer.reset(answerer.conversation_id(message.chat_id))
    except WorkersUnavailableError as error:
        log.warning("could not reset chat %s: %s", message.chat_id, error)
        await reply_to(message, [WORKERS_DOWN])
        return
    await reply_to(message, [NEW_CONVERSATION])


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """"Other answers", 👍 and 👎. The query is always answered, even when the answer has been forgotten."""
    query = update.callback_query
    if query is None:
        return
    notice: str | None = None
    try:
        action, _, key = (query.data or "").partition(":")
        found = context.bot_data[RECENT_KEY].get(key)
        if found is None or action not in ("alt", "up", "down"):
            notice = STALE_BUTTON
            return
        chat_id, answer = found
        if action == "alt":
            if isinstance(query.message, Message):
                await reply_to(query.message, render_alternatives_html(answer), as_html=True)
            return
        feedback: FeedbackLog = context.bot_data[FEEDBACK_KEY]
        user_id = query.from_user.id if query.from_user is not None else chat_id
        counted = await asyncio.to_thread(feedback.record, key, user_id, answer.question, answer.text, action, chat_id)
        notice = VOTE_THANKS if counted else ALREADY_VOTED
    finally:
        try:
            await query.answer(notice)
        except TelegramError as error:
            log.warning("could not answer a callback query: %s", error)


def register_chat_handlers(application: Application, group: int = 0) -> None:
    """/ask, /new, the inline buttons; the text handler itself is registered last by the caller (``on_text``)."""
    new_messages = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler("ask", ask_command, filters=new_messages), group)
    application.add_handler(CommandHandler("new", new_conversation, filters=new_messages), group)
    application.add_handler(CallbackQueryHandler(on_button), group)
