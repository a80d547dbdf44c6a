"""The one place that chooses where chunks live (``document_store.backend`` in config.yaml).

- ``faiss`` (default): an index folder per process, built by ``bot.indexing`` (FAISS + bm25s).
- ``pgvector``: PostgreSQL + pgvector shared by several workers (``bot.stores.pgvector_store``), written by
  ``bot.stores.pgvector_indexing``; the connection string only from ``QABOT_PG_DSN``.

The CLI, the HTTP server, ingest and ``QAService`` call the functions below and never import FAISS or psycopg;
what they get back follows the ``ArticleIndex`` protocol. The backends' modules are imported only when chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.config import Settings

if TYPE_CHECKING:
    from haystack import Pipeline

    from bot.articles import ArticleInfo
    from bot.conversation import ConversationStore
    from bot.indexing import BuildResult


class ArticleIndex(Protocol):
    """One readable version of the chunks, as ``QAService`` uses it."""

    @property
    def articles(self) -> list[ArticleInfo]: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def marker(self) -> str:
        """Identifies this version: a FAISS build's folder name, the store's version number."""
        ...

    def current_marker(self, settings: Settings) -> str | None:
        """The version that is current now (cheap: checked before every question); None when there is none."""
        ...

    def reload(self, settings: Settings) -> ArticleIndex: ...

    def count_chunks(self) -> int: ...

    def retrieval_pipeline(self, settings: Settings, text_embedder: Any) -> tuple[Pipeline, str]: ...


def _pgvector(settings: Settings) -> bool:
    return settings.document_store.backend == "pgvector"


def load_index(settings: Settings) -> ArticleIndex:
    """The index to answer from: the active FAISS build, or the PostgreSQL store as it is now."""
    if _pgvector(settings):
        from bot.stores.pgvector_indexing import open_store
        from bot.stores.pgvector_store import PgvectorIndex

        return PgvectorIndex.read(open_store(settings))
    from bot.indexing import load_index as load_faiss_index

    return load_faiss_index(settings)


def build_index(settings: Settings, force: bool = False, progress_bar: bool = True) -> BuildResult:
    """``qabot index``: index the articles folder (only new or changed articles are embedded)."""
    if _pgvector(settings):
        from bot.stores.pgvector_indexing import sync_index

        return sync_index(settings, force, progress_bar)
    from bot.indexing import build_index as build_faiss_index

    return build_faiss_index(settings, force=force, progress_bar=progress_bar)


def add_article(settings: Settings, path: Path, progress_bar: bool = True) -> tuple[ArticleInfo, BuildResult]:
    """``qabot index add``, ``/add``, ``POST /articles``: copy the file into the articles folder and index it."""
    if _pgvector(settings):
        from bot.stores.pgvector_indexing import add_article as add_to_store

        return add_to_store(settings, path, progress_bar)
    from bot.indexing import add_article as add_to_faiss

    return add_to_faiss(settings, path, progress_bar)


def remove_article(settings: Settings, article_id: str, progress_bar: bool = True) -> BuildResult:
    """``qabot index remove``: delete the article's file and its chunks."""
    if _pgvector(settings):
        from bot.stores.pgvector_indexing import remove_article as remove_from_store

        return remove_from_store(settings, article_id, progress_bar)
    from bot.indexing import remove_article as remove_from_faiss

    return remove_from_faiss(settings, article_id, progress_bar)


def conversation_store(settings: Settings, idle_seconds: float | None = None) -> ConversationStore:
    """Where ``qabot serve`` keeps follow-up state: in PostgreSQL with pgvector (shared by every worker),
    in this process's memory with FAISS (one process answers)."""
    idle = idle_seconds if idle_seconds is not None else settings.telegram.conversation_idle_minutes * 60
    if _pgvector(settings):
        from bot.stores.pgvector_conversations import PostgresConversationStore

        return PostgresConversationStore(settings, idle_seconds=idle)
    from bot.conversation import InMemoryConversationStore

    return InMemoryConversationStore(idle_seconds=idle)
