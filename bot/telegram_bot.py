"""The Telegram front end: short async handlers around the one ``QAService``, built in one factory.

Shaped like the python-telegram-bot examples: ``build_application`` wires everything (rate limiter,
concurrent updates, handlers, error handler, ``post_init`` that puts the service in ``bot_data``) and
``run_bot`` runs it with long polling or a webhook. This module keeps the transport, start-up, /help and the
error handler; answering a chat (conversation memory, buttons, rendering with ``render_telegram_html``) lives in
``bot.telegram_chat`` and the article commands in ``bot.telegram_articles``. Questions go either to the service
in this process (``LocalAnswerer``: inference in threads, batched across chats, so the event loop stays free) or,
with ``telegram.answer_url``, to ``qabot serve`` workers (``bot.serve_client.ServeClient``; no model is loaded
here). Every failure ends in a message to the user, never in a dead bot.

The token is a password: the caller reads it (``bot.telegram_token.read_token``) and it is kept out of every
log record (``protect_token_in_logs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
from collections.abc import Sequence
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from telegram import Bot, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.config import Settings, TelegramSettings
from bot.errors import BotSetupError
from bot.rendering import split_message
from bot.serve_client import WORKERS_DOWN, ServeClient, WorkersUnavailableError
from bot.telegram_articles import (
    DESK_KEY,
    register_article_handlers,
    register_forwarded_article_handlers,
    visible_articles,
)
from bot.telegram_chat import (
    ANSWERER_KEY,
    ChatAnswerer,
    LocalAnswerer,
    command_for_us,
    is_group,
    on_text,
    prepare_chat_state,
    register_chat_handlers,
    register_commands,
)
from bot.telegram_replies import reply_to
from bot.telegram_token import TOKEN_ENV, protect_token_in_logs, redact

if TYPE_CHECKING:  # the service pulls in the model libraries; the bot module itself stays light to import
    from bot.answering import QAService
    from bot.articles import ArticleInfo

log = logging.getLogger(__name__)

MAX_TITLES_IN_HELP = 10

NON_TEXT_HINT = "Send me a question as text — I can only read text messages. /help says what I know about."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
APOLOGY = "Sorry, something went wrong on my side while answering. Please try again in a moment."

# -- texts ----------------------------------------------------------------------------------------------


def help_messages(articles: Sequence[ArticleInfo]) -> list[str]:
    """/start and /help: what the bot does and which article(s) it can answer about (HTML)."""
    lines = [
        "<b>Hi! I answer questions about news articles.</b>",
        "Send me a question as plain text — who, what, when, where — and I reply with the answer, how sure I am "
        "and the sentence of the article it comes from.",
        "",
    ]
    if not articles:
        lines.append("No article is indexed yet.")
    else:
        lines.append("I know this article:" if len(articles) == 1 else f"I know these {len(articles)} articles:")
        lines += [f"• {html.escape(article.title)}" for article in articles[:MAX_TITLES_IN_HELP]]
        if len(articles) > MAX_TITLES_IN_HELP:
            lines.append(f"…and {len(articles) - MAX_TITLES_IN_HELP} more.")
    lines += ["", "/sources — the articles with their source and date", "/help — this message"]
    return split_message("\n".join(lines))


# -- handlers -------------------------------------------------------------------------------------------


async def show_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help list what *this chat* may ask about: the rule of /sources, never another chat's articles."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    desk = context.bot_data.get(DESK_KEY)
    if desk is None:  # no chat's own articles (forwarding to workers, or no article commands): the shared ones
        answerer: ChatAnswerer = context.bot_data[ANSWERER_KEY]
        try:
            articles = await answerer.articles()
        except WorkersUnavailableError as error:
            log.warning("no article list for /help: %s", error)
            await reply_to(message, [WORKERS_DOWN])
            return
    else:  # reads the ledger: off the event loop, like /sources
        articles = await asyncio.to_thread(visible_articles, desk, chat.id)
    await reply_to(message, help_messages(articles), as_html=True)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message and command_for_us(message, context.bot.username):  # not /start@OtherBot, not group chatter
        await reply_to(message, [UNKNOWN_COMMAND])


async def non_text_hint(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message and not is_group(message):  # a photo in a group is for the people in it
        await reply_to(message, [NON_TEXT_HINT])


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure and apologise to the chat it happened in; this handler itself must never raise."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error while handling update %s", update_id, exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat:
        try:
            await context.bot.send_message(chat_id=update.effective_chat.id, text=APOLOGY)
        except Exception as error:
            log.warning("could not send the apology to chat %s: %s", update.effective_chat.id, error)


# -- application ----------------------------------------------------------------------------------------


def file_base_url(base_url: str) -> str:
    """The file download URL that goes with a Bot API URL: ``https://host/bot`` -> ``https://host/file/bot``."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path="/file" + parts.path))


def build_application(answering: QAService | ServeClient, token: str, settings: TelegramSettings) -> Application:
    """The whole bot in one place: transport, rate limiting, concurrency, handlers and shared state.

    ``answering`` is the ``QAService`` to answer with in this process, or a ``ServeClient`` that forwards every
    question to ``qabot serve`` workers (``telegram.answer_url``): then no model is loaded here, the article
    commands that change the library are refused (see ``register_forwarded_article_handlers``) and the
    conversations live where the workers keep them.
    """
    protect_token_in_logs(token)

    async def post_init(application: Application) -> None:
        from bot.stores import conversation_store

        answerer: ChatAnswerer
        if isinstance(answering, ServeClient):
            answerer = answering
        else:
            answerer = LocalAnswerer(
                answering,
                conversation_store(answering.settings),  # PostgreSQL with pgvector: shared
                window=settings.batch_window_ms / 1000,
                workers=settings.workers,
            )
        prepare_chat_state(
            application.bot_data,
            answerer,
            feedback_file=Settings.resolve(settings.feedback_file),
            salt=hashlib.sha256(f"qabot-feedback:{token}".encode()).hexdigest(),
        )
        await register_commands(application)

    async def post_shutdown(application: Application) -> None:
        answerer = application.bot_data.pop(ANSWERER_KEY, None)
        if answerer is not None:
            await answerer.aclose()

    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.base_url)
        .base_file_url(file_base_url(settings.base_url))
        .rate_limiter(AIORateLimiter(max_retries=settings.max_retries))
        .concurrent_updates(settings.concurrent_updates)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    new_messages = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler(["start", "help"], show_help, filters=new_messages))
    if isinstance(answering, ServeClient):  # the workers' library: /sources lists it, the rest is done there
        register_forwarded_article_handlers(application, answering)
    else:
        register_article_handlers(application, answering, settings)  # /add, documents, /sources, /use, /forget
    register_chat_handlers(application)  # /ask, /new, answer buttons (bot.telegram_chat)
    application.add_handler(MessageHandler(new_messages & filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(new_messages & filters.TEXT, on_text))
    application.add_handler(MessageHandler(new_messages & ~filters.TEXT & ~filters.StatusUpdate.ALL, non_text_hint))
    application.add_error_handler(on_error)
    return application


def check_bot_api(token: str, settings: TelegramSettings) -> str:
    """Ask the Bot API who we are (getMe); the bot's username, or BotSetupError that never contains the token.

    Run before the model loads, so a refused token or an unreachable server is one clear line within seconds.
    python-telegram-bot's own InvalidToken message quotes the token, so its text is never passed on.
    """
    from telegram.error import InvalidToken, NetworkError, TelegramError

    protect_token_in_logs(token)  # the request URL carries the token, and library loggers may show it
    server = urlsplit(settings.base_url).netloc or settings.base_url

    async def get_me() -> str:
        bot = Bot(token, base_url=settings.base_url, base_file_url=file_base_url(settings.base_url))
        try:
            await bot.initialize()  # calls getMe
            return bot.username
        finally:
            with contextlib.suppress(Exception):
                await bot.shutdown()

    try:
        return asyncio.run(get_me())
    except InvalidToken:
        raise BotSetupError(
            f"the Bot API at {server} refused the token in {TOKEN_ENV} (unauthorized or malformed); "
            "check it with @BotFather"
        ) from None
    except NetworkError as error:  # TimedOut is a NetworkError
        reason = " ".join(redact(str(error), token).split()) or type(error).__name__
        raise BotSetupError(f"cannot reach the Bot API at {server}: {reason}") from None
    except TelegramError as error:
        reason = " ".join(redact(str(error), token).split()) or type(error).__name__
        raise BotSetupError(f"the Bot API at {server} refused getMe: {reason}") from None


def webhook_arguments(settings: TelegramSettings, token: str) -> dict[str, Any]:
    """``run_webhook`` arguments, or BotSetupError before anything starts if webhook mode can't work."""
    if not settings.webhook_url:
        raise BotSetupError("telegram.mode is webhook but telegram.webhook_url is not set in the config")
    if find_spec("tornado") is None:
        raise BotSetupError(
            'webhook mode needs python-telegram-bot\'s webhook extra: pip install "python-telegram-bot[webhooks]"'
        )
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlsplit(settings.webhook_url).path.lstrip("/"),
        "webhook_url": settings.webhook_url,
        # Telegram echoes this header on every call, so forged updates from others are refused; derived from
        # the token so that it is stable across restarts without being another secret to configure.
        "secret_token": hashlib.sha256(f"qabot-webhook:{token}".encode()).hexdigest(),
    }


def run_bot(answering: QAService | ServeClient, token: str, settings: TelegramSettings) -> None:
    """Run until interrupted: long polling by default, a webhook server when ``settings.mode == "webhook"``."""
    webhook = webhook_arguments(settings, token) if settings.mode == "webhook" else None
    application = build_application(answering, token, settings)
    if webhook is not None:
        log.info("starting the bot: webhook on %s:%s", settings.webhook_listen, settings.webhook_port)
        application.run_webhook(allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY], **webhook)
    else:
        log.info("starting the bot: long polling %s", urlsplit(settings.base_url).netloc)
        application.run_polling(allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])
