"""Keeping the Telegram bot token secret: read from the environment only, redacted from shown text and logs.

Its own module because the token's rules are needed wherever Telegram errors or URLs may be shown or logged:
``bot.telegram_bot`` (start-up, the application) and ``bot.telegram_articles`` (a failed file download quotes
the file URL, which carries the token), and ``bot.telegram_bot`` imports ``bot.telegram_articles``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.errors import BotSetupError

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
REDACTED = "<redacted-token>"


def read_token(environ: Mapping[str, str]) -> str:
    """The bot token from ``TELEGRAM_BOT_TOKEN``; an error that says how to set it (and never echoes it)."""
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise BotSetupError(
            f"{TOKEN_ENV} is not set: create a bot with @BotFather and export {TOKEN_ENV}=<token> "
            "before starting the bot (the token is never read from config.yaml)"
        )
    if any(char.isspace() for char in token):
        raise BotSetupError(f"{TOKEN_ENV} contains white space; a Telegram bot token is one word like 123456:ABC-xyz")
    return token


def redact(text: str, token: str) -> str:
    """``text`` with the bot token replaced: for anything shown or logged that may quote a request URL."""
    return text.replace(token, REDACTED) if token else text


class TokenRedactingFilter(logging.Filter):
    """Replaces the token in a record's message and traceback.

    The Bot API puts the token in every request URL, so any library that logs URLs (httpx does at INFO) or
    exceptions carrying them would leak it; a leaked token hands the bot to whoever reads the log.
    """

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: let the handler report it, as it would without us
            return True
        if self.token in message:
            record.msg, record.args = redact(message, self.token), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = redact(record.exc_text, self.token)
        return True


def protect_token_in_logs(token: str) -> None:
    """Silence httpx's per-request INFO lines and redact the token on the handlers and loggers in place now.

    Handler filters see records from every logger that reaches them; logger filters cover records logged
    directly to the libraries' top loggers. Installing twice for the same token is a no-op.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("", "httpx", "httpcore", "telegram", "bot"):
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, TokenRedactingFilter) and f.token == token for f in target.filters):
                target.addFilter(TokenRedactingFilter(token))
