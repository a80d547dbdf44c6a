"""Errors whose message is shown to the user as is (one line, no traceback)."""

from __future__ import annotations

from typing import ClassVar


class QabotError(Exception):
    """Base of every expected failure: bad input, missing index, bad config."""


class InvalidQuestionError(QabotError, ValueError):
    """An empty, over-long or otherwise unusable question; nothing was computed.

    The subclasses say which rule refused it, so a front end picks its words by type, not by the message's text;
    ``reason`` is the same fact as a word, for the HTTP API's 422 body (the bot behind ``qabot serve`` reads it
    back with ``invalid_question``).
    """

    reason: ClassVar[str] = "invalid"


class QuestionNotTextError(InvalidQuestionError):
    """Something that is not a string was passed as the question."""

    reason: ClassVar[str] = "not_text"


class EmptyQuestionError(InvalidQuestionError):
    """Nothing is left of the question once white space and control characters are removed."""

    reason: ClassVar[str] = "empty"


class QuestionTooLongError(InvalidQuestionError):
    """Over the character limit or the reader's token limit (``bot.question_rules``)."""

    reason: ClassVar[str] = "too_long"


def invalid_question(reason: str | None, message: str) -> InvalidQuestionError:
    """The error for a ``reason`` word (``InvalidQuestionError.reason``); an unknown or missing one is the base."""
    kinds = {kind.reason: kind for kind in (QuestionNotTextError, EmptyQuestionError, QuestionTooLongError)}
    return kinds.get(reason or "", InvalidQuestionError)(message)


class IndexMissingError(QabotError):
    """No index on disk yet: the user should run ``qabot index``."""


class IndexCorruptError(QabotError):
    """The index files exist but cannot be read or do not agree with each other."""


class IndexBusyError(QabotError):
    """Another process is writing the index and did not finish within ``index.lock_timeout_s``."""


class ArticleError(QabotError):
    """An article file that cannot be read or has no text after cleaning."""


class BotSetupError(QabotError):
    """The Telegram bot cannot start as configured: no token, or webhook mode without what a webhook needs."""


class ModelLoadError(QabotError):
    """A model folder or hub id that cannot be loaded."""


class IngestError(QabotError):
    """A URL or file that cannot be turned into an article: refused, unreachable, too big, not an article."""
