"""Build, persist and load the index of article chunks: FAISS vectors + a bm25s keyword index.

Layout under ``index/``::

    .lock                       held (fcntl.flock) by the one process writing the index
    CURRENT                     name of the active build (replaced atomically with os.replace)
    build-<fingerprint>-<n>/    documents.faiss + documents.json (FAISSDocumentStore), embeddings.npy (the
                                vectors, for reuse), bm25/ (bot.keyword_index), manifest.json (with checksums)

Crash safety: a build is written to a staging folder, fsynced, renamed to a name no other build has, and
only then does ``CURRENT`` switch to it; the build ``CURRENT`` names is never touched before the switch, and
older builds are deleted only after it. So a kill at any moment leaves ``CURRENT`` naming a complete build
holding either the old or the new article set (``tests/test_index_faults.py`` kills a build at every step).
Writers (``index``, ``index add``, ``index remove``) are serialised by a lock file; readers need no lock.

Incremental: every article has a fingerprint (its text and metadata, the chunking and the embedder); a build
reuses the chunks and vectors of every article whose fingerprint the current build already holds and embeds
only the others, so ``index add`` embeds one article. The build's own fingerprint covers all articles and
the index settings, so re-running with unchanged inputs does nothing. The manifest keeps a SHA-256 of every
file: a damaged build is refused by ``load_index`` and rebuilt from scratch by a plain ``qabot index``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, Pipeline
from haystack_integrations.document_stores.faiss import FAISSDocumentStore

from bot.articles import Article, ArticleInfo, article_id_for, load_article, load_articles
from bot.chunking import SentenceChunker, article_document
from bot.config import Settings
from bot.errors import ArticleError, IndexBusyError, IndexCorruptError, IndexMissingError
from bot.keyword_index import KeywordIndex
from bot.onnx_components import OnnxDocumentEmbedder
from bot.pipeline import build_document_embedder

log = logging.getLogger(__name__)

INDEX_FORMAT = 2
STORE_NAME = "documents"
VECTORS_FILE = "embeddings.npy"
KEYWORD_DIR = "bm25"
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
# New articles are chunked and embedded about this many chunks at a time, so a large build holds one group's
# Python-float embeddings at once instead of the whole corpus's (vectors are kept as one float32 array), and
# the progress bar (articles, with ETA) moves often. Within a group, batches are cut by length (bucketing).
EMBED_GROUP_CHUNKS = 256
# Test hook for tests/test_index_faults.py: the build process SIGKILLs itself when it reaches this step.
KILL_AT_ENV = "QABOT_INDEX_KILL_AT"
BUILD_STEPS = ("copied", "removed", "staged", "stored", "manifest", "renamed", "current", "cleaned")


@dataclass(frozen=True)
class BuildResult:
    fingerprint: str
    built: bool  # False when the index was already up to date
    documents: int
    articles: int
    seconds: float
    embedded_chunks: int = 0  # chunks embedded by this build; the rest were reused from the previous one
    faiss_index: str = "flat"


@dataclass
class LoadedIndex:
    store: FAISSDocumentStore
    keyword: KeywordIndex
    manifest: dict[str, Any]
    build_dir: Path

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @cached_property
    def vectors(self) -> np.ndarray:
        """The build's chunk vectors, memory-mapped (exact scoped search). ``load_index`` opens the map at once,
        so it stays readable after a newer build has replaced this one on disk and removed its folder."""
        return np.load(self.build_dir / VECTORS_FILE, mmap_mode="r")

    @cached_property
    def articles(self) -> list[ArticleInfo]:
        """Built once per loaded build (its manifest never changes): ``QAService.articles`` reads it for every
        Telegram question (the chat's scope), as ``PgvectorIndex.articles`` is read once per version."""
        return [ArticleInfo(**info) for info in self.manifest["articles"]]

    # The ``bot.stores.ArticleIndex`` protocol, which QAService reads through:

    @property
    def marker(self) -> str:
        """What identifies this build: the folder name that ``CURRENT`` names while it is active."""
        return self.build_dir.name

    def current_marker(self, settings: Settings) -> str | None:
        """The build active on disk now (one read of a small file); None when there is none."""
        return current_build_name(settings.resolve(settings.index_dir))

    def reload(self, settings: Settings) -> LoadedIndex:
        return load_index(settings)

    def count_chunks(self) -> int:
        return self.store.count_documents()

    def retrieval_pipeline(self, settings: Settings, text_embedder: Any) -> tuple[Pipeline, str]:
        """FAISS top-k (+ bm25s top-k) over this build, wired by ``bot.pipeline.assemble_retrieval``."""
        from haystack_integrations.components.retrievers.faiss import FAISSEmbeddingRetriever

        from bot.keyword_index import KeywordRetriever
        from bot.pipeline import assemble_retrieval
        from bot.scoped_retrieval import ScopedDenseRetriever

        retrieval = settings.retrieval
        dense = ScopedDenseRetriever(  # exact for scoped questions: FAISS filters only after its search
            FAISSEmbeddingRetriever(document_store=self.store, top_k=retrieval.dense_top_k),
            self.store.filter_documents(),  # the stored Document objects themselves, not copies
            self.vectors,
        )
        return assemble_retrieval(
            settings,
            text_embedder,
            dense,
            KeywordRetriever(index=self.keyword, top_k=retrieval.bm25_top_k) if retrieval.bm25_top_k > 0 else None,
        )


def article_fingerprint(article: Article, settings: Settings) -> str:
    """Hash of everything that determines one article's chunks and vectors."""
    payload = {
        "format": INDEX_FORMAT,
        "chunking": settings.chunking.model_dump(),
        "embedder": settings.embedder.model_dump(exclude={"batch_size"}),
        "article": [asdict(article.info), article.text],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def build_fingerprint(article_fingerprints: list[str], settings: Settings) -> str:
    """Hash of the whole build: every article and how the vectors are indexed."""
    payload = {
        "format": INDEX_FORMAT,
        "articles": article_fingerprints,
        "index": settings.index.model_dump(exclude={"lock_timeout_s"}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def build_indexing_pipeline(settings: Settings, progress_bar: bool = True) -> Pipeline:
    """Whole articles -> sentence chunks -> normalised MiniLM embeddings."""
    pipeline = Pipeline()
    pipeline.add_component("chunker", SentenceChunker(settings.chunking))
    pipeline.add_component("embedder", build_document_embedder(settings, progress_bar=progress_bar))
    pipeline.connect("chunker.documents", "embedder.documents")
    return pipeline


# -- writers: build, add, remove (each under the write lock) ------------------------------------------------


def build_index(settings: Settings, force: bool = False, progress_bar: bool = True) -> BuildResult:
    """Index every article in ``articles_dir``; a no-op when the current build already holds exactly them.

    ``force`` rebuilds from scratch, embedding every article again.
    """
    index_dir = settings.resolve(settings.index_dir)
    with index_write_lock(index_dir, settings.index.lock_timeout_s):
        return _build(settings, force, progress_bar)


def add_article(settings: Settings, path: Path, progress_bar: bool = True) -> tuple[ArticleInfo, BuildResult]:
    """Validate an article file, copy it into ``articles_dir`` and index it (embedding only that article).

    The file is checked before anything is copied, so a bad file changes nothing.
    """
    article = load_article(path)
    with index_write_lock(settings.resolve(settings.index_dir), settings.index.lock_timeout_s):
        copy_into_articles(settings, path, article)
        return article.info, _build(settings, False, progress_bar)


def copy_into_articles(settings: Settings, path: Path, article: Article) -> None:
    """Copy a validated article file (``article``, read from ``path``) into ``articles_dir``; the caller holds
    the write lock."""
    articles_dir = settings.resolve(settings.articles_dir)
    target = articles_dir / f"{article_id_for(path)}.txt"
    if target.exists() and target.resolve() != path.resolve() and target.read_bytes() != path.read_bytes():
        raise ArticleError(f"an article with id {article.info.article_id!r} already exists ({target}); rename the file")
    articles_dir.mkdir(parents=True, exist_ok=True)
    if target.resolve() != path.resolve():
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.copyfile(path, temporary)
        os.replace(temporary, target)
        _checkpoint("copied")


def remove_article(settings: Settings, article_id: str, progress_bar: bool = True) -> BuildResult:
    """Delete an article from ``articles_dir`` and from the index (no article is embedded again)."""
    with index_write_lock(settings.resolve(settings.index_dir), settings.index.lock_timeout_s):
        delete_from_articles(settings, article_id)
        return _build(settings, False, progress_bar)


def removable_article_files(settings: Settings, article_id: str) -> list[Path]:
    """The article's files in ``articles_dir``, checked before anything is deleted: ArticleError for an unknown
    id or the last article."""
    articles_dir = settings.resolve(settings.articles_dir)
    every = sorted(articles_dir.glob("*.txt"))  # one listing for the look-up and both checks
    paths = [p for p in every if article_id_for(p) == article_id]
    if not paths:
        known = sorted(article_id_for(p) for p in every)
        raise ArticleError(f"no article {article_id!r} in {articles_dir} (articles: {', '.join(known) or 'none'})")
    if len(every) == len(paths):
        raise ArticleError(f"{article_id!r} is the only article; an index needs at least one")
    return paths


def delete_from_articles(settings: Settings, article_id: str) -> None:
    """Delete an article's file from ``articles_dir``; refuses an unknown id or the last article."""
    for path in removable_article_files(settings, article_id):
        path.unlink()
    _checkpoint("removed")


@contextmanager
def index_write_lock(index_dir: Path, timeout_s: float) -> Iterator[None]:
    """Hold the index's write lock; IndexBusyError after ``timeout_s`` seconds of another writer holding it.

    A kernel lock (flock): it is released when its holder exits, even by SIGKILL, so it never goes stale.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = (index_dir / LOCK_FILE).open("a+")
    except OSError as error:
        raise IndexCorruptError(f"cannot write the index folder {index_dir}: {error.strerror or error}") from error
    with handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"another qabot process is writing the index in {index_dir} (waited {timeout_s:g} s); "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _build(settings: Settings, force: bool, progress_bar: bool) -> BuildResult:
    """The build itself; the caller holds the write lock."""
    started = time.perf_counter()
    index_dir = settings.resolve(settings.index_dir)
    articles = load_articles(settings.resolve(settings.articles_dir))
    prints = [article_fingerprint(a, settings) for a in articles]
    print_fp = build_fingerprint(prints, settings)
    current = None if force else _verified_current(index_dir)  # force reuses nothing: no need to read it
    if current is not None and current[0]["fingerprint"] == print_fp:
        manifest, build_dir = current
        _remove_stale_builds(index_dir, keep=build_dir.name)  # what a killed writer left behind
        return BuildResult(
            print_fp, False, manifest["document_count"], len(articles), time.perf_counter() - started,
            faiss_index=manifest.get("faiss_index", "flat"),
        )  # fmt: skip

    reusable = {} if current is None else _reusable_chunks(*current)
    documents, vectors, embedded = _chunks_and_vectors(settings, articles, prints, reusable, progress_bar)
    infos = [a.info for a in articles]
    faiss_index = write_build(settings, infos, prints, print_fp, documents, vectors)
    return BuildResult(
        print_fp, True, len(documents), len(articles), time.perf_counter() - started, embedded, faiss_index
    )


def write_build(
    settings: Settings,
    articles: list[ArticleInfo],
    article_prints: list[str],
    print_fp: str,
    documents: list[Document],
    vectors: np.ndarray,
) -> str:
    """Persist chunks (without embeddings) and their vectors as a new build and make it current.

    The caller holds the write lock. Returns the FAISS index type used. Also used by
    benchmarks/corpus_benchmark.py to write a synthetic build of any size.
    """
    index_dir = settings.resolve(settings.index_dir)
    faiss_index = _faiss_index_type(settings, len(documents))
    store = _faiss_store(settings, faiss_index, vectors.shape[1])
    store.write_documents([replace(d, embedding=v) for d, v in zip(documents, vectors, strict=True)])
    # documents.json without the vectors (they are in documents.faiss and embeddings.npy): a third of the
    # size, and no 384 Python floats per chunk in a serving process's memory.
    store.documents = {d.id: d for d in documents}
    keyword = KeywordIndex.build(documents)

    staging = index_dir / f".staging-{os.getpid()}-{time.time_ns():x}"
    staging.mkdir()
    _checkpoint("staged")
    store.save(staging / STORE_NAME)
    np.save(staging / VECTORS_FILE, vectors)
    keyword.save(staging / KEYWORD_DIR)
    _checkpoint("stored")
    manifest = {
        "format": INDEX_FORMAT,
        "fingerprint": print_fp,
        "article_fingerprints": dict(zip((a.article_id for a in articles), article_prints, strict=True)),
        "embedder": settings.embedder.model_dump(),
        "embedding_dim": int(vectors.shape[1]),
        "chunking": settings.chunking.model_dump(),
        "faiss_index": faiss_index,
        "articles": [asdict(a) for a in articles],
        "document_count": len(documents),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checksums": _checksums(staging),
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_tree(staging)
    _checkpoint("manifest")
    build_name = f"build-{print_fp}-{time.time_ns():x}"  # never the name of the build CURRENT names
    staging.rename(index_dir / build_name)
    _fsync_tree(index_dir, recursive=False)
    _checkpoint("renamed")
    _write_current(index_dir, build_name)
    _checkpoint("current")
    _remove_stale_builds(index_dir, keep=build_name)
    _checkpoint("cleaned")
    return faiss_index


def _chunks_and_vectors(
    settings: Settings,
    articles: list[Article],
    prints: list[str],
    reusable: dict[str, tuple[list[Document], np.ndarray]],
    progress_bar: bool,
) -> tuple[list[Document], np.ndarray, int]:
    """Every article's chunks (without embeddings) and their vectors, in article order.

    Reused articles take their chunks and vectors from the previous build; the others are chunked and
    embedded a group at a time, so memory grows with the float32 vectors, not with Python lists of floats.
    The indexing pipeline's two components are run one after the other here rather than by ``Pipeline.run``,
    for two reasons: the next group is chunked while a background thread embeds this one (chunking is
    single-threaded Python; without the overlap both cores but one sat idle meanwhile), and ``Pipeline.run``
    deep-copies every chunk between the components (34.5 µs a chunk: ``benchmarks/hot_path_effects.py`` part 4,
    on 2 busy cores).
    """
    parts: list[tuple[list[Document], np.ndarray] | None] = [reusable.get(p) for p in prints]
    pending = [i for i, part in enumerate(parts) if part is None]
    embedded = 0
    if pending:
        pipeline = build_indexing_pipeline(settings, progress_bar=False)
        chunker, embedder = pipeline.get_component("chunker"), pipeline.get_component("embedder")
        bar = _progress(len(pending), progress_bar)
        with ThreadPoolExecutor(1, thread_name_prefix="qabot-index") as background:
            in_flight: tuple[list[int], list[Document], Future[np.ndarray]] | None = None
            while pending or in_flight is not None:
                queued = None
                if pending:
                    group = _next_group(articles, pending)
                    chunks = chunker.run(documents=[article_document(articles[i]) for i in group])["documents"]
                    queued = (group, chunks, background.submit(_embed, embedder, chunks))
                if in_flight is not None:
                    group, chunks, vectors = in_flight
                    embedded += _split_by_article(articles, group, chunks, vectors.result(), parts, bar)
                    bar.set_postfix(chunks=embedded)
                in_flight = queued
        bar.close()
    documents = [d for part in parts for d in part[0]]  # type: ignore[index]
    vectors = np.concatenate([part[1] for part in parts if len(part[1])])  # type: ignore[index]
    return documents, vectors, embedded


def _next_group(articles: list[Article], pending: list[int]) -> list[int]:
    """Take the next articles off ``pending``: about ``EMBED_GROUP_CHUNKS`` chunks' worth, at least one."""
    group, size = [], 0
    while pending and (not group or size < EMBED_GROUP_CHUNKS):
        group.append(pending.pop(0))
        size += max(1, len(articles[group[-1]].text) // 400)  # rough chunk count, only to size the group
    return group


def _embed(embedder: Any, chunks: list[Document]) -> np.ndarray:
    """The chunks' vectors as float32 rows; the ONNX embedder hands them over as an array directly."""
    if isinstance(embedder, OnnxDocumentEmbedder):
        return embedder.embed([c.content or "" for c in chunks])
    if hasattr(embedder, "warm_up"):
        embedder.warm_up()
    return np.asarray([d.embedding for d in embedder.run(documents=chunks)["documents"]], dtype=np.float32)


def _split_by_article(
    articles: list[Article],
    group: list[int],
    chunks: list[Document],
    vectors: np.ndarray,
    parts: list[tuple[list[Document], np.ndarray] | None],
    bar: Any,
) -> int:
    """Hand each article of ``group`` its own chunks and vector rows; returns how many chunks were embedded."""
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        rows.setdefault(chunk.meta["article_id"], []).append(row)
    for i in group:
        mine = rows.get(articles[i].info.article_id, [])
        parts[i] = ([chunks[r] for r in mine], vectors[mine] if mine else np.zeros((0,), dtype=np.float32))
        bar.update(1)
    return len(chunks)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="embedding articles", unit="article", disable=not enabled or total == 0)


def _reusable_chunks(manifest: dict[str, Any], build_dir: Path) -> dict[str, tuple[list[Document], np.ndarray]]:
    """Chunks and vectors of the current build, by article fingerprint."""
    store = FAISSDocumentStore(embedding_dim=manifest["embedding_dim"])
    store.load(build_dir / STORE_NAME)
    vectors = np.load(build_dir / VECTORS_FILE, mmap_mode="r")
    rows: dict[str, list[int]] = {}
    documents = store.filter_documents()
    for row, document in enumerate(documents):
        rows.setdefault(document.meta.get("article_id", ""), []).append(row)
    return {
        fingerprint: ([documents[r] for r in rows.get(article_id, [])], np.asarray(vectors[rows.get(article_id, [])]))
        for article_id, fingerprint in manifest.get("article_fingerprints", {}).items()
    }


def _faiss_index_type(settings: Settings, chunks: int) -> str:
    choice = settings.index.faiss_index
    if choice == "auto":
        return "hnsw" if chunks > settings.index.hnsw_above_chunks else "flat"
    return choice


def _faiss_store(settings: Settings, faiss_index: str, dimension: int) -> FAISSDocumentStore:
    """An empty store of the configured type (vectors are unit length, so L2 ranks as cosine does)."""
    if faiss_index == "flat":
        return FAISSDocumentStore(embedding_dim=dimension, index_string="Flat")
    import faiss

    store = FAISSDocumentStore(embedding_dim=dimension, index_string=f"HNSW{settings.index.hnsw_m}")
    faiss.downcast_index(store.index.index).hnsw.efConstruction = settings.index.hnsw_ef_construction
    return store


# -- readers -----------------------------------------------------------------------------------------------


def current_build_name(index_dir: Path) -> str | None:
    """The active build's folder name, or None when no index was ever built ("" when CURRENT is garbage)."""
    try:
        raw = (index_dir / CURRENT_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return ""
    return name if name and "/" not in name and name not in (".", "..") else ""


def load_index(settings: Settings) -> LoadedIndex:
    """Open the active build, checking its checksums and that its parts agree; errors say how to repair."""
    index_dir = settings.resolve(settings.index_dir)
    build_name = current_build_name(index_dir)
    if build_name is None:
        raise IndexMissingError(f"no index in {index_dir}; build it with `qabot index`")
    build_dir = index_dir / (build_name or CURRENT_FILE)
    try:
        if not build_name:
            raise ValueError(f"{index_dir / CURRENT_FILE} does not name a build")
        manifest = _read_manifest(build_dir)
        _verify_checksums(build_dir, manifest, skip=(VECTORS_FILE,))
        store = FAISSDocumentStore(embedding_dim=manifest["embedding_dim"], index_string="Flat")
        store.load(build_dir / STORE_NAME)
        expected = manifest["document_count"]
        if store.count_documents() != expected or store.index is None or store.index.ntotal != expected:
            raise ValueError(f"expected {expected} documents and vectors, found {store.count_documents()}")
        if manifest.get("faiss_index") == "hnsw":
            _set_ef_search(store, settings.index.hnsw_ef_search)
        keyword = KeywordIndex.load(build_dir / KEYWORD_DIR, store.filter_documents())
        ArticleInfo(**manifest["articles"][0])
        loaded = LoadedIndex(store=store, keyword=keyword, manifest=manifest, build_dir=build_dir)
        if len(loaded.vectors) != expected:  # opens the memory map now, while the build's folder exists
            raise ValueError(f"expected {expected} vectors in {VECTORS_FILE}, found {len(loaded.vectors)}")
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError) as error:
        raise IndexCorruptError(
            f"the index in {build_dir} is unreadable ({type(error).__name__}: {error}); "
            "rebuild it with `qabot index`"
        ) from error
    return loaded


def _set_ef_search(store: FAISSDocumentStore, ef_search: int) -> None:
    import faiss

    faiss.downcast_index(store.index.index).hnsw.efSearch = ef_search


def _read_manifest(build_dir: Path) -> dict[str, Any]:
    manifest = json.loads((build_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise ValueError(f"index format {manifest.get('format') if isinstance(manifest, dict) else '?'}, "
                         f"this qabot reads format {INDEX_FORMAT}")  # fmt: skip
    return manifest


def _verified_current(index_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """The current build's manifest and folder if every file matches its checksum, else None (rebuild)."""
    build_name = current_build_name(index_dir)
    if not build_name:
        return None
    build_dir = index_dir / build_name
    try:
        manifest = _read_manifest(build_dir)
        _verify_checksums(build_dir, manifest)
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("the index in %s is not usable (%s); building it again from the articles", build_dir, error)
        return None
    return manifest, build_dir


def _checksums(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): _sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()
    }


def _verify_checksums(build_dir: Path, manifest: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    for name, expected in manifest["checksums"].items():
        if name not in skip and _sha256(build_dir / name) != expected:
            raise ValueError(f"{name} does not match its checksum")


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _checkpoint(step: str) -> None:
    """Fault-injection hook: SIGKILL this process at ``step`` when the test environment asks for it."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _write_current(index_dir: Path, build_name: str) -> None:
    temporary = index_dir / f"{CURRENT_FILE}.tmp-{os.getpid()}"
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(build_name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, index_dir / CURRENT_FILE)
    _fsync_tree(index_dir, recursive=False)


def _remove_stale_builds(index_dir: Path, keep: str) -> None:
    """Older builds and leftovers of killed writers (safe: we hold the write lock, so none is in use)."""
    for path in index_dir.iterdir():
        if path.name == keep:
            continue
        if path.is_dir() and (path.name.startswith(("build-", ".staging-")) or ".tmp-" in path.name):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.startswith(f"{CURRENT_FILE}.tmp-"):
            path.unlink(missing_ok=True)


def _fsync_tree(folder: Path, recursive: bool = True) -> None:
    """Flush the folder's files (and sub-folders) and the folder entries themselves to disk.

    All at once from a few threads (``os.fsync`` releases the GIL), so that a file system with slow flushes can
    commit them together instead of one after another. Every one has finished before this returns, so the
    guarantee is the same: all of it is on disk before the rename.
    """
    paths = [p for p in (sorted(folder.rglob("*")) if recursive else []) if p.is_file() or p.is_dir()]
    if not paths:
        _fsync(folder)
        return
    with ThreadPoolExecutor(8, thread_name_prefix="qabot-fsync") as pool:
        list(pool.map(_fsync, [*paths, folder]))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
