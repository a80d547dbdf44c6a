"""Who may see which article: the shared library, and articles that belong to one chat only.

An article is shared unless this ledger lists owners for it. Chat-only articles (``telegram.user_articles:
per_chat``) are listed with their owners ("chat:<id>") and their size for the quota. The ledger lives next to
the articles as ``.library.json`` (the indexer reads only ``*.txt``), so it moves and is backed up with them.
It is written atomically, and an owned article is listed *before* its file is written, so there is no moment
at which a chat's article could be answered to everyone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.articles import ArticleInfo
from bot.config import Settings
from bot.errors import IngestError

LIBRARY_FILE = ".library.json"


def chat_owner(chat_id: int) -> str:
    """The owner key of a Telegram chat."""
    return f"chat:{chat_id}"


@dataclass
class PrivateArticle:
    owners: list[str]
    chars: int


@dataclass
class Library:
    path: Path
    private: dict[str, PrivateArticle] = field(default_factory=dict)

    def is_visible(self, article_id: str, owner: str | None) -> bool:
        """Shared articles are visible to all; a chat-only article to its owners only."""
        entry = self.private.get(article_id)
        return entry is None or (owner is not None and owner in entry.owners)

    def visible(self, articles: Iterable[ArticleInfo], owner: str | None) -> list[ArticleInfo]:
        return [article for article in articles if self.is_visible(article.article_id, owner)]

    def scope(
        self, articles: Iterable[ArticleInfo], owner: str | None, focus: str | None = None
    ) -> frozenset[str] | None:
        """The article ids a question from ``owner`` may be answered from (``QAService``'s scope): None (no filter)
        while nothing is private and nothing is focused; ``focus`` alone when ``owner`` may see it."""
        if focus is None and not self.private:
            return None
        visible = [article.article_id for article in self.visible(articles, owner)]
        return frozenset({focus}) if focus is not None and focus in visible else frozenset(visible)

    def owned_by(self, owner: str) -> list[str]:
        return [article_id for article_id, entry in self.private.items() if owner in entry.owners]

    def chars_owned_by(self, owner: str) -> int:
        return sum(entry.chars for entry in self.private.values() if owner in entry.owners)

    def save(self) -> None:
        payload = {
            "format": 1,
            "private": {
                article_id: {"owners": entry.owners, "chars": entry.chars}
                for article_id, entry in sorted(self.private.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        temporary.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        written = temporary.stat()
        os.replace(temporary, self.path)
        _remember(self.path, written, self.private)


# The parsed ledger per path, keyed by the file's (inode, mtime_ns, size): the Telegram bot and ``qabot serve``
# ask for a chat's scope before every question, and this spares the JSON read and parse while nothing changed.
# The ledger is only ever replaced whole (``Library.save``: a new inode), and ``save`` records what it wrote, so
# this process never sees a stale copy of its own writes; another process's write changes the key.
_PARSED: dict[Path, tuple[tuple[int, int, int], dict[str, PrivateArticle]]] = {}


def file_version(stat: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a file from the next: (inode, mtime_ns, size). An ``os.replace`` gives a new
    inode, an edit in place a new mtime or size. The one rule behind both parse caches (this ledger's and the
    duplicate check's in ``bot.ingest.service``)."""
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _remember(path: Path, stat: os.stat_result, private: dict[str, PrivateArticle]) -> None:
    _PARSED[path] = (file_version(stat), _copy(private))


def _copy(private: dict[str, PrivateArticle]) -> dict[str, PrivateArticle]:
    """Callers change the Library they get (``ingest``, ``forget``); the remembered one must not change."""
    return {article_id: PrivateArticle(list(e.owners), e.chars) for article_id, e in private.items()}


def load_library(settings: Settings) -> Library:
    """The ledger of ``articles_dir``; an empty one when it was never written."""
    path = settings.resolve(settings.articles_dir) / LIBRARY_FILE
    try:
        with path.open("rb") as handle:  # stat and read the same file, even while another save replaces it
            stat = os.fstat(handle.fileno())
            known = _PARSED.get(path)
            if known is not None and known[0] == file_version(stat):
                return Library(path, _copy(known[1]))
            raw = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return Library(path)
    except (OSError, ValueError) as error:
        raise IngestError(f"cannot read the article ledger {path}: {error}") from error
    try:
        private = {
            article_id: PrivateArticle(owners=[str(o) for o in entry["owners"]], chars=int(entry["chars"]))
            for article_id, entry in raw.get("private", {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise IngestError(f"the article ledger {path} is malformed ({type(error).__name__}: {error})") from error
    _remember(path, stat, private)  # keeps a copy of its own: the caller may change this freshly parsed one
    return Library(path, private)
