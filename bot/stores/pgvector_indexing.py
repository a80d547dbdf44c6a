"""``qabot index``, ``index add`` and ``index remove`` on the PostgreSQL store (``document_store.backend: pgvector``).

The articles folder stays the source of the text, as with FAISS; the store holds the chunks. Each article is
written in its own transaction (``PgvectorArticleStore.upsert_article``/``delete_article``), so a crash leaves
every article either as it was or as it is now, and a running worker sees the change through the version row.
Only articles whose fingerprint (``bot.indexing.article_fingerprint``: text, metadata, chunking, embedder)
differs from the one stored with them are chunked and embedded again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bot.articles import Article, ArticleInfo, article_id_for, load_article, load_articles
from bot.config import Settings
from bot.errors import ArticleError
from bot.indexing import (
    BuildResult,
    _progress,
    article_fingerprint,
    build_indexing_pipeline,
    copy_into_articles,
    index_write_lock,
    removable_article_files,
)
from bot.stores.pgvector_store import PgvectorArticleStore, check_dsn, index_article

BACKEND_NAME = "pgvector"


def open_store(settings: Settings) -> PgvectorArticleStore:
    """The configured store, connected (``QABOT_PG_DSN``; a missing or bad one is one clear error)."""
    check_dsn(os.environ)
    options = settings.document_store
    store = PgvectorArticleStore(
        schema=options.pg_schema, create=options.create, hnsw_ef_search=settings.index.hnsw_ef_search
    )
    return store.open()


def sync_index(settings: Settings, force: bool = False, progress_bar: bool = True) -> BuildResult:
    """Make the store hold exactly the articles folder: upsert new and changed articles, delete the others."""
    started = time.perf_counter()
    with index_write_lock(settings.resolve(settings.index_dir), settings.index.lock_timeout_s):
        articles = load_articles(settings.resolve(settings.articles_dir))
        store = open_store(settings)
        try:
            stored = store.article_fingerprints()
            pending = []
            for article in articles:
                fingerprint = article_fingerprint(article, settings)
                if force or stored.get(article.info.article_id) != fingerprint:
                    pending.append((article, fingerprint))
            embedded = _upsert(settings, store, pending, progress_bar)
            wanted = {article.info.article_id for article in articles}
            removed = [article_id for article_id in stored if article_id not in wanted]
            for article_id in removed:
                store.delete_article(article_id)
            return _result(store, started, bool(pending or removed), embedded)
        finally:
            store.close()


def add_article(settings: Settings, path: Path, progress_bar: bool = True) -> tuple[ArticleInfo, BuildResult]:
    """Validate the file, copy it into the articles folder, and upsert that one article (one transaction)."""
    started = time.perf_counter()
    article = load_article(path)  # a bad file changes nothing
    with index_write_lock(settings.resolve(settings.index_dir), settings.index.lock_timeout_s):
        store = open_store(settings)  # before the copy: no store, nothing changed
        try:
            copy_into_articles(settings, path, article)
            fingerprint = article_fingerprint(article, settings)
            unchanged = store.article_fingerprints().get(article.info.article_id) == fingerprint
            pending = [] if unchanged else [(article, fingerprint)]
            embedded = _upsert(settings, store, pending, progress_bar)
            return article.info, _result(store, started, bool(pending), embedded)
        finally:
            store.close()


def remove_article(settings: Settings, article_id: str, progress_bar: bool = True) -> BuildResult:
    """Delete the article's chunks and row (one transaction), then its file (when this machine has it)."""
    started = time.perf_counter()
    articles_dir = settings.resolve(settings.articles_dir)
    with index_write_lock(settings.resolve(settings.index_dir), settings.index.lock_timeout_s):
        store = open_store(settings)
        try:
            paths: list[Path] = []
            if any(article_id_for(path) == article_id for path in articles_dir.glob("*.txt")):
                paths = removable_article_files(settings, article_id)  # checked first: a refusal changes nothing
            elif article_id not in store.article_fingerprints():
                known = ", ".join(sorted(store.article_fingerprints())) or "none"
                raise ArticleError(f"no article {article_id!r} in the store or in {articles_dir} (articles: {known})")
            # The database first: if it fails, the file stays and the chunks are served as before (never a file
            # gone while its chunks are still answered from).
            store.delete_article(article_id)
            for path in paths:
                path.unlink(missing_ok=True)
            return _result(store, started, True, 0)
        finally:
            store.close()


def _upsert(
    settings: Settings, store: PgvectorArticleStore, pending: list[tuple[Article, str]], progress_bar: bool
) -> int:
    """Chunk, embed and upsert each pending article in its own transaction; returns the chunks embedded."""
    if not pending:
        return 0
    pipeline = build_indexing_pipeline(settings, progress_bar=False)
    bar = _progress(len(pending), progress_bar)
    embedded = 0
    for article, fingerprint in pending:
        embedded += index_article(store, article, pipeline, fingerprint)
        bar.update(1)
        bar.set_postfix(chunks=embedded)
    bar.close()
    return embedded


def _result(store: PgvectorArticleStore, started: float, built: bool, embedded: int) -> BuildResult:
    return BuildResult(
        fingerprint=f"v{store.version()}",
        built=built,
        documents=store.count_chunks(),
        articles=len(store.articles()),
        seconds=time.perf_counter() - started,
        embedded_chunks=embedded,
        faiss_index=BACKEND_NAME,
    )
