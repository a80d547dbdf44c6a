"""Errors whose message is shown to the user as is (one line, no traceback)."""


class QabotError(Exception):
    """Base of every expected failure: bad input, missing index, bad config."""


class InvalidQuestionError(QabotError, ValueError):
    """An empty, over-long or otherwise unusable question; nothing was computed."""


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
