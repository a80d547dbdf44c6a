"""Telegram handlers for bringing articles: /add URL, sent documents, /sources, /use, /forget.

Who may add what (``telegram`` settings):
- admins (``admin_user_ids``) add to the shared library, which every chat can ask about;
- with ``user_articles: per_chat`` anyone else adds articles that only their own chat sees, within a quota
  (``chat_max_articles``, ``chat_max_chars``), and takes them away again with ``/forget``;
- with ``user_articles: off`` (the default) nobody else adds anything.

What a chat may ask about is its *scope* (``chat_scope``): the shared articles plus its own, or the one
article it focused on with ``/use N``. The scope travels with each question to ``QAService.answer_many``,
which filters both retrievers by article id, so chat B's questions are never answered from chat A's article.
Fetching, extraction and indexing run in a thread (``asyncio.to_thread``): the bot keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from bot.config import Settings, TelegramSettings
from bot.errors import QabotError
from bot.ingest import IngestResult, Quota, forget, ingest_bytes, ingest_url, is_url
from bot.ingest.library import chat_owner, load_library
from bot.ingest.service import FILE_TYPES
from bot.rendering import split_message
from bot.serve_client import WORKERS_DOWN, ServeClient, WorkersUnavailableError
from bot.telegram_replies import reply_to
from bot.telegram_token import redact

if TYPE_CHECKING:
    from bot.answering import ArticleScope, QAService
    from bot.articles import ArticleInfo

log = logging.getLogger(__name__)

DESK_KEY = "article_desk"
FOCUS_KEY = "focus_article"

READING = "Reading the article…"
ADMINS_ONLY = "Only the bot's admins can add articles here."
ADD_USAGE = "Send /add followed by a link, e.g. /add https://example.org/news/story — or send me the file."
USE_USAGE = "Send /use N to ask about article N of /sources only, or /use all to ask about all of them again."
FORGET_USAGE = "Send /forget N to remove article N of /sources that this chat added, or /forget all."
ARTICLES_AT_WORKERS = (
    "Here I answer from one shared set of articles (/sources lists them): adding, choosing and forgetting "
    "articles is done by the service's admins, not in the chat."
)


@dataclass(frozen=True)
class ArticleDesk:
    """What the handlers need, kept in ``bot_data``: the full settings (ingest, folders) and the bot's own."""

    settings: Settings
    telegram: TelegramSettings
    service: QAService

    @property
    def quota(self) -> Quota:
        return Quota(max_articles=self.telegram.chat_max_articles, max_chars=self.telegram.chat_max_chars)


def register_article_handlers(application: Application, service: QAService, settings: TelegramSettings) -> None:
    """Add the article commands and the document handler (before the generic message handlers)."""
    application.bot_data[DESK_KEY] = ArticleDesk(settings=service.settings, telegram=settings, service=service)
    new_messages = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler("add", add_url, filters=new_messages))
    application.add_handler(CommandHandler("sources", show_sources, filters=new_messages))
    application.add_handler(CommandHandler("use", use_article, filters=new_messages))
    application.add_handler(CommandHandler("forget", forget_articles, filters=new_messages))
    application.add_handler(MessageHandler(new_messages & filters.Document.ALL, add_document))


def register_forwarded_article_handlers(application: Application, workers: ServeClient) -> None:
    """The article commands when the bot forwards questions to ``qabot serve`` workers (``telegram.answer_url``).

    The workers answer every chat from their shared library (``POST /ask`` has no per-chat scope), so /sources
    lists that library and /add, documents, /use and /forget get one clear refusal. Forwarding /add to
    ``POST /articles`` would put the workers' admin token in the bot, and chat-only articles or a focus would
    need a per-chat scope in the HTTP API; admins add articles there (``qabot index add``, ``POST /articles``).
    """
    new_messages = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler("sources", partial(show_shared_sources, workers), filters=new_messages))
    application.add_handler(CommandHandler(["add", "use", "forget"], refuse_at_workers, filters=new_messages))
    private_documents = new_messages & filters.Document.ALL & filters.ChatType.PRIVATE
    application.add_handler(MessageHandler(private_documents, refuse_at_workers))


async def refuse_at_workers(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message is not None:
        await update.effective_message.reply_text(ARTICLES_AT_WORKERS)


async def show_shared_sources(workers: ServeClient, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    """/sources when forwarding: the workers' shared library (``GET /articles``), numbered as always."""
    message = update.effective_message
    if message is None:
        return
    try:
        articles = await workers.articles()
    except WorkersUnavailableError as error:
        log.warning("no article list for /sources: %s", error)
        await reply_to(message, [WORKERS_DOWN])
        return
    await reply_to(message, numbered_sources(articles, set(), None, focus_hint=False), as_html=True)


# -- scope --------------------------------------------------------------------------------------------------


def visible_articles(desk: ArticleDesk, chat_id: int) -> list[ArticleInfo]:
    """The articles this chat can ask about, in /sources order (blocking: reads the ledger and the index)."""
    return chat_view(desk, chat_id)[0]


def chat_view(desk: ArticleDesk, chat_id: int) -> tuple[list[ArticleInfo], set[str]]:
    """What this chat can ask about and which of those are its own, from one read of the ledger (blocking)."""
    library, owner = load_library(desk.settings), chat_owner(chat_id)
    return library.visible(desk.service.articles(), owner), set(library.owned_by(owner))


def _scope(desk: ArticleDesk, chat_id: int, focus: str | None) -> ArticleScope:
    return load_library(desk.settings).scope(desk.service.articles(), chat_owner(chat_id), focus)


async def chat_scope(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> ArticleScope:
    """The article ids this chat's question may be answered from (None: all), for ``QAService.answer_many``."""
    desk: ArticleDesk | None = context.bot_data.get(DESK_KEY)
    if desk is None:
        return None
    focus = context.chat_data.get(FOCUS_KEY) if context.chat_data is not None else None
    return await asyncio.to_thread(_scope, desk, chat_id, focus)


# -- adding -------------------------------------------------------------------------------------------------


def _owner_for(desk: ArticleDesk, update: Update) -> tuple[bool, str | None]:
    """(allowed, owner): admins add shared articles (owner None); others their chat's own, if enabled."""
    user = update.effective_user
    chat = update.effective_chat
    if user is not None and user.id in desk.telegram.admin_user_ids:
        return True, None
    if desk.telegram.user_articles == "per_chat" and chat is not None:
        return True, chat_owner(chat.id)
    return False, None


async def _may_add(update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message) -> tuple[bool, str | None]:
    """``_owner_for`` for a handler that adds: a refused sender is told so here, once for every way of adding."""
    allowed, owner = _owner_for(context.bot_data[DESK_KEY], update)
    if not allowed:
        await message.reply_text(ADMINS_ONLY)
    return allowed, owner


async def add_url(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/add URL: fetch, extract and index the article, editing the progress message into the result."""
    message = update.effective_message
    if message is None:
        return
    desk: ArticleDesk = context.bot_data[DESK_KEY]
    allowed, owner = await _may_add(update, context, message)
    if not allowed:
        return
    if len(context.args or []) != 1 or not is_url(context.args[0]):  # type: ignore[index]
        await message.reply_text(ADD_USAGE)
        return
    url = context.args[0]  # type: ignore[index]

    async def fetch_and_ingest() -> IngestResult:
        return await asyncio.to_thread(ingest_url, desk.settings, url, owner=owner, quota=desk.quota)

    await _ingest_with_progress(message, owner, fetch_and_ingest, context.bot.token)


async def add_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A sent .txt/.md/.html/.pdf document: download (size checked first) and index it like /add."""
    message = update.effective_message
    if message is None or message.document is None:
        return
    desk: ArticleDesk = context.bot_data[DESK_KEY]
    allowed, owner = await _may_add(update, context, message)
    if not allowed:
        return
    document = message.document
    name = document.file_name or "document"
    if Path(name).suffix.lower() not in FILE_TYPES:
        await message.reply_text(f"I can read {', '.join(FILE_TYPES)} files; {name} is none of them.")
        return
    limit = desk.settings.ingest.max_bytes
    if document.file_size is not None and document.file_size > limit:
        await message.reply_text(f"{name} is {document.file_size:,} bytes; I take files up to {limit:,} bytes.")
        return

    async def download_and_ingest() -> IngestResult:
        telegram_file = await document.get_file()
        data = bytes(await telegram_file.download_as_bytearray())
        return await asyncio.to_thread(ingest_bytes, desk.settings, data, name, owner=owner, quota=desk.quota)

    await _ingest_with_progress(message, owner, download_and_ingest, context.bot.token)


async def _ingest_with_progress(
    message: Message, owner: str | None, work: Callable[[], Awaitable[IngestResult]], token: str
) -> None:
    """Show "Reading the article…", run ``work``, and edit the progress message into its result.

    A Telegram error may quote the file URL, which carries the bot token: its text is redacted before it is shown.
    """
    progress = await message.reply_text(READING, do_quote=message.build_reply_arguments())
    try:
        result = await work()
    except QabotError as error:
        await _edit(progress, f"Sorry, I couldn't add that: {error}")
        return
    except TelegramError as error:
        await _edit(progress, f"Sorry, I couldn't download that file from Telegram: {redact(str(error), token)}")
        return
    title = html.escape(result.info.title)
    where = "for this chat only" if owner is not None else "to the shared library"
    if result.added:
        text = f"Added {where}: <b>{title}</b>\nAsk me anything about it. /sources lists what I know."
    else:
        text = f"I already have <b>{title}</b>; nothing new was added. /sources lists what I know."
    await _edit(progress, text, as_html=True)


async def _edit(progress: Message, text: str, as_html: bool = False) -> None:
    await progress.edit_text(text[:4096], parse_mode=ParseMode.HTML if as_html else None)


# -- sources, focus, forget ------------------------------------------------------------------------------------


def numbered_sources(
    articles: Sequence[ArticleInfo], own: set[str], focus: str | None, focus_hint: bool = True
) -> list[str]:
    """/sources: what this chat can ask about, numbered for /use and /forget (HTML); ``focus_hint`` False
    leaves out the /use line (the bot in front of workers has no /use)."""
    if not articles:
        return ["No article is indexed yet."]
    lines = ["<b>Articles you can ask about</b>"]
    for number, article in enumerate(articles, start=1):
        details = ", ".join(html.escape(part) for part in (article.source, article.date) if part)
        flags = (("this chat only", article.article_id in own), ("in focus", article.article_id == focus))
        marks = [mark for mark, on in flags if on]
        lines.append(
            f"{number}. {html.escape(article.title)}"
            + (f" — <i>{details}</i>" if details else "")
            + (f" [{', '.join(marks)}]" if marks else "")
        )
    if focus_hint:
        lines.append("\n/use N asks about article N only; /use all undoes it.")
    return split_message("\n".join(lines))


async def show_sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    desk: ArticleDesk = context.bot_data[DESK_KEY]
    articles, own = await asyncio.to_thread(chat_view, desk, chat.id)
    focus = context.chat_data.get(FOCUS_KEY) if context.chat_data is not None else None
    await reply_to(message, numbered_sources(articles, own, focus), as_html=True)


def _pick(context: ContextTypes.DEFAULT_TYPE, articles: list[ArticleInfo]) -> int | None:
    """The 0-based index of ``articles`` named by the command's argument (None if not a valid number)."""
    args = context.args or []
    if len(args) == 1 and args[0].isdigit() and 1 <= int(args[0]) <= len(articles):
        return int(args[0]) - 1
    return None


async def use_article(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/use N focuses the chat's questions on article N; /use all lifts it."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or context.chat_data is None:
        return
    if [a.lower() for a in context.args or []] == ["all"]:
        context.chat_data.pop(FOCUS_KEY, None)
        await message.reply_text("I'll answer from all the articles you can ask about again.")
        return
    articles = await asyncio.to_thread(visible_articles, context.bot_data[DESK_KEY], chat.id)
    picked = _pick(context, articles)
    if picked is None:
        await message.reply_text(USE_USAGE + (f" There are {len(articles)} articles." if articles else ""))
        return
    context.chat_data[FOCUS_KEY] = articles[picked].article_id
    await message.reply_text(
        f"From now on I answer from <b>{html.escape(articles[picked].title)}</b> only. /use all undoes it.",
        parse_mode=ParseMode.HTML,
    )


async def forget_articles(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget N or /forget all: remove this chat's own articles (shared ones stay)."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    desk: ArticleDesk = context.bot_data[DESK_KEY]
    owner = chat_owner(chat.id)
    articles, own = await asyncio.to_thread(chat_view, desk, chat.id)
    if [a.lower() for a in context.args or []] == ["all"]:
        targets = sorted(own)
    else:
        picked = _pick(context, articles)
        if picked is None:
            await message.reply_text(FORGET_USAGE)
            return
        if articles[picked].article_id not in own:
            await message.reply_text("That article belongs to the shared library; I can only forget this chat's own.")
            return
        targets = [articles[picked].article_id]
    if not targets:
        await message.reply_text("This chat has not added any articles.")
        return
    try:
        forgotten = await asyncio.to_thread(forget, desk.settings, targets, owner)
    except QabotError as error:
        await message.reply_text(f"Sorry, I couldn't forget that: {error}")
        return
    if context.chat_data is not None and context.chat_data.get(FOCUS_KEY) in targets:
        context.chat_data.pop(FOCUS_KEY, None)
    titles = "\n".join(f"• {html.escape(info.title)}" for info in forgotten)
    await message.reply_text(f"Forgotten:\n{titles}", parse_mode=ParseMode.HTML)
