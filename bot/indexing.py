"""Build, persist and load the FAISS index of article chunks.

Layout under ``index/``::

    CURRENT                 name of the active build (replaced atomically with os.replace)
    build-<fingerprint>/    documents.faiss + documents.json (FAISSDocumentStore) + manifest.json

A build is written to a temporary folder, renamed into place, and only then does ``CURRENT`` switch to it,
so a crash at any moment leaves the previous index intact. The fingerprint covers the cleaned articles,
the chunking settings and the embedder, so re-running with unchanged inputs does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline
from haystack_integrations.document_stores.faiss import FAISSDocumentStore

from bot.articles import Article, ArticleInfo, article_id_for, load_article, load_articles
from bot.chunking import SentenceChunker, article_document
from bot.config import Settings
from bot.errors import ArticleError, IndexCorruptError, IndexMissingError
from bot.pipeline import build_document_embedder

INDEX_FORMAT = 1
STORE_NAME = "documents"
CURRENT_FILE = "CURRENT"


@dataclass(frozen=True)
class BuildResult:
    fingerprint: str
    built: bool  # False when the index was already up to date
    documents: int
    articles: int
    seconds: float


@dataclass
class LoadedIndex:
    store: FAISSDocumentStore
    manifest: dict[str, Any]
    build_dir: Path

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def articles(self) -> list[ArticleInfo]:
        return [ArticleInfo(**info) for info in self.manifest["articles"]]


def fingerprint(articles: list[Article], settings: Settings) -> str:
    """Hash of everything that determines the index content."""
    digest = hashlib.sha256()
    payload = {
        "format": INDEX_FORMAT,
        "chunking": settings.chunking.model_dump(),
        "embedder": settings.embedder.model_dump(exclude={"batch_size"}),
        "articles": [[asdict(a.info), a.text] for a in articles],
    }
    digest.update(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def build_indexing_pipeline(settings: Settings, progress_bar: bool = True) -> Pipeline:
    """Whole articles -> sentence chunks -> normalised MiniLM embeddings."""
    pipeline = Pipeline()
    pipeline.add_component("chunker", SentenceChunker(settings.chunking))
    pipeline.add_component("embedder", build_document_embedder(settings, progress_bar=progress_bar))
    pipeline.connect("chunker.documents", "embedder.documents")
    return pipeline


def build_index(settings: Settings, force: bool = False, progress_bar: bool = True) -> BuildResult:
    """Index every article in ``articles_dir``; a no-op when the fingerprint matches the current build."""
    started = time.perf_counter()
    articles = load_articles(settings.resolve(settings.articles_dir))
    print_fp = fingerprint(articles, settings)
    index_dir = settings.resolve(settings.index_dir)
    current = _current_manifest(index_dir)
    if current and current.get("fingerprint") == print_fp and not force:
        return BuildResult(print_fp, False, current["document_count"], len(articles), time.perf_counter() - started)

    pipeline = build_indexing_pipeline(settings, progress_bar=progress_bar)
    documents: list[Document] = pipeline.run({"chunker": {"documents": [article_document(a) for a in articles]}})[
        "embedder"
    ]["documents"]
    dimension = len(documents[0].embedding or [])
    store = FAISSDocumentStore(embedding_dim=dimension, index_string="Flat")
    store.write_documents(documents)

    index_dir.mkdir(parents=True, exist_ok=True)
    build_name = f"build-{print_fp}"
    staging = index_dir / f".{build_name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    store.save(staging / STORE_NAME)
    manifest = {
        "format": INDEX_FORMAT,
        "fingerprint": print_fp,
        "embedder": settings.embedder.model_dump(),
        "embedding_dim": dimension,
        "chunking": settings.chunking.model_dump(),
        "articles": [asdict(a.info) for a in articles],
        "document_count": len(documents),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_dir(staging)
    final = index_dir / build_name
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    _write_current(index_dir, build_name)
    _remove_stale_builds(index_dir, keep=build_name)
    return BuildResult(print_fp, True, len(documents), len(articles), time.perf_counter() - started)


def add_article(settings: Settings, path: Path, progress_bar: bool = True) -> tuple[ArticleInfo, BuildResult]:
    """Validate an article file, copy it into ``articles_dir`` and re-index.

    The file is checked before anything is copied, so a bad file changes nothing.
    """
    article = load_article(path)
    articles_dir = settings.resolve(settings.articles_dir)
    target = articles_dir / f"{article_id_for(path)}.txt"
    if target.exists() and target.resolve() != path.resolve() and target.read_bytes() != path.read_bytes():
        raise ArticleError(f"an article with id {article.info.article_id!r} already exists ({target}); rename the file")
    articles_dir.mkdir(parents=True, exist_ok=True)
    if target.resolve() != path.resolve():
        temporary = target.with_suffix(".txt.tmp")
        shutil.copyfile(path, temporary)
        os.replace(temporary, target)
    return article.info, build_index(settings, progress_bar=progress_bar)


def current_build_name(index_dir: Path) -> str | None:
    """The active build's folder name, or None when no index was ever built."""
    try:
        return (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:  # not a file we wrote: no usable build to point at
        raise IndexCorruptError(
            f"{index_dir / CURRENT_FILE} is not a build name (byte {error.start} is not UTF-8); "
            "rebuild the index with `qabot index --force`"
        ) from error


def load_index(settings: Settings) -> LoadedIndex:
    """Open the active build, checking that its parts agree; errors tell the user to run ``qabot index``."""
    index_dir = settings.resolve(settings.index_dir)
    build_name = current_build_name(index_dir)
    if build_name is None:
        raise IndexMissingError(f"no index in {index_dir}; build it with `qabot index`")
    build_dir = index_dir / build_name
    try:
        manifest = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))
        store = FAISSDocumentStore(embedding_dim=manifest["embedding_dim"], index_string="Flat")
        store.load(build_dir / STORE_NAME)
        expected = manifest["document_count"]
        if store.count_documents() != expected or store.index is None or store.index.ntotal != expected:
            raise ValueError(f"expected {expected} documents and vectors, found {store.count_documents()}")
        ArticleInfo(**manifest["articles"][0])
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError) as error:
        raise IndexCorruptError(
            f"the index in {build_dir} is unreadable ({type(error).__name__}: {error}); "
            "rebuild it with `qabot index --force`"
        ) from error
    return LoadedIndex(store=store, manifest=manifest, build_dir=build_dir)


def _current_manifest(index_dir: Path) -> dict[str, Any] | None:
    try:
        build_name = current_build_name(index_dir)
    except IndexCorruptError:
        return None  # an unreadable CURRENT is replaced by the next build
    if build_name is None:
        return None
    try:
        manifest = json.loads((index_dir / build_name / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    store_files = [index_dir / build_name / f"{STORE_NAME}{suffix}" for suffix in (".faiss", ".json")]
    return manifest if all(f.exists() for f in store_files) else None


def _write_current(index_dir: Path, build_name: str) -> None:
    temporary = index_dir / f"{CURRENT_FILE}.tmp-{os.getpid()}"
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(build_name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)


def _remove_stale_builds(index_dir: Path, keep: str) -> None:
    for path in index_dir.iterdir():
        if path.is_dir() and path.name != keep and (path.name.startswith("build-") or ".tmp-" in path.name):
            shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    for file in [*path.iterdir(), path] if path.is_dir() else [path]:
        if file.is_file() or file == path:
            descriptor = os.open(file, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
