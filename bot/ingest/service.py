"""One entry point for every new article: a URL or a file becomes an article ``.txt`` in ``articles_dir``, indexed.

    URL  ─► fetch (SSRF guard, limits) ─┐
    .html / .pdf / .md / .txt bytes ────┴► extract ─► judge (enough text?) ─► duplicate? ─► quota?
                                            ─► write .txt with front matter ─► bot.indexing.add_article

Anything that is not an article ends in one IngestError and leaves nothing behind: checks come before
writing, and a failed indexing removes the file it wrote. The same URL, or the same text (after the same
cleaning the indexer applies), added again is recognised and not stored twice. Additions are serialised by
one lock: the ledger, the files and the index are read-modify-write.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot.articles import (
    MAX_ARTICLE_ID_CHARS,
    ArticleInfo,
    article_id_from_text,
    decode_text,
    load_article,
    parse_article,
    read_bounded,
)
from bot.config import IngestSettings, Settings
from bot.errors import ArticleError, IngestError
from bot.ingest.extract import (
    ExtractedArticle,
    extract_html,
    extract_markdown,
    extract_pdf,
    extract_text,
    word_count,
)
from bot.ingest.fetch import HTML_TYPES, FetchedDocument, fetch_url
from bot.ingest.library import Library, PrivateArticle, file_version, load_library

Fetcher = Callable[[str, IngestSettings], FetchedDocument]
FILE_TYPES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Quota:
    """How much one owner may add (``telegram.chat_max_articles`` / ``chat_max_chars``)."""

    max_articles: int
    max_chars: int


@dataclass(frozen=True)
class IngestResult:
    info: ArticleInfo
    added: bool  # False: it was already in the library (nothing new stored)
    articles: int  # articles in the index now (all owners)


def is_url(source: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) is not None


def ingest_url(
    settings: Settings, url: str, *, owner: str | None = None, quota: Quota | None = None, fetch: Fetcher = fetch_url
) -> IngestResult:
    """Fetch, extract and index the article at ``url`` (``owner``: a chat's private article; None: shared)."""
    url = _normal_url(url)
    with _LOCK:
        existing = _find_existing(settings, url=url)
        if existing is not None:
            return _already_there(settings, existing, owner, quota)
    document = fetch(url, settings.ingest)
    if document.content_type in HTML_TYPES:
        extracted = extract_html(document.body, document.final_url)
    else:
        extracted = extract_pdf(document.body)
    final_url = _normal_url(document.final_url)
    site = extracted.site or urlsplit(final_url).hostname
    slug_source = extracted.title or urlsplit(final_url).path
    return _store(settings, extracted, slug_source, source=site, url=final_url, owner=owner, quota=quota)


def ingest_file(
    settings: Settings, path: Path, *, owner: str | None = None, quota: Quota | None = None
) -> IngestResult:
    """Index a local .txt, .md, .html or .pdf file."""
    data = read_bounded(path, settings.ingest.max_bytes, IngestError)
    return ingest_bytes(settings, data, path.name, owner=owner, quota=quota)


def ingest_bytes(
    settings: Settings, data: bytes, filename: str, *, owner: str | None = None, quota: Quota | None = None
) -> IngestResult:
    """Index an uploaded or local file's bytes; the type comes from the file name's suffix."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FILE_TYPES:
        raise IngestError(f"{filename}: only {', '.join(FILE_TYPES)} files can be added")
    if len(data) > settings.ingest.max_bytes:
        raise IngestError(f"{filename} is {len(data):,} bytes; the limit is {settings.ingest.max_bytes:,}")
    if suffix == ".pdf":
        if not data.startswith(b"%PDF-"):
            raise IngestError(f"{filename} is not a PDF file")
        extracted = extract_pdf(data)
    elif suffix in (".html", ".htm"):
        extracted = extract_html(data)
    else:
        raw = decode_text(data, filename, IngestError)
        extracted = extract_markdown(raw) if suffix in (".md", ".markdown") else extract_text(raw)
    return _store(settings, extracted, Path(filename).stem, source=extracted.site, url=None, owner=owner, quota=quota)


# -- storing ----------------------------------------------------------------------------------------------


def _store(
    settings: Settings,
    extracted: ExtractedArticle,
    slug_source: str,
    *,
    source: str | None,
    url: str | None,
    owner: str | None,
    quota: Quota | None,
) -> IngestResult:
    words = word_count(extracted.text)
    if words < settings.ingest.min_words:
        raise IngestError(
            f"only {words} words of text found; that is not an article (at least {settings.ingest.min_words})"
        )
    content = _article_file_text(extracted, source=source, url=url)
    try:
        article = parse_article(content, "new")
    except ArticleError as error:
        raise IngestError(str(error).removeprefix("new: ")) from error
    digest = _text_digest(article.text)
    with _LOCK:
        existing = _find_existing(settings, url=url, digest=digest)
        if existing is not None:
            return _already_there(settings, existing, owner, quota)
        library = load_library(settings)
        _check_quota(library, owner, quota, len(article.text))
        articles_dir = settings.resolve(settings.articles_dir)
        articles_dir.mkdir(parents=True, exist_ok=True)
        path = _free_path(articles_dir, slug_source, digest)
        if owner is not None:  # listed before the file exists: never visible to everyone, not even briefly
            library.private[path.stem] = PrivateArticle(owners=[owner], chars=len(article.text))
            library.save()
        try:
            temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            temporary.write_text(content, encoding="utf-8")
            os.replace(temporary, path)
            info, build = _index(settings, path)
        except BaseException:
            path.unlink(missing_ok=True)
            if owner is not None:
                library.private.pop(path.stem, None)
                library.save()
            raise
    return IngestResult(info=info, added=True, articles=build.articles)


def _index(settings: Settings, path: Path):
    from bot.stores import add_article  # the model libraries load only when something is really indexed

    return add_article(settings, path, progress_bar=False)


def _already_there(settings: Settings, existing: ArticleInfo, owner: str | None, quota: Quota | None) -> IngestResult:
    """A duplicate: nothing new is stored, but a chat gets to see a private copy another chat added, and an
    admin's (owner None) addition makes it shared."""
    library = load_library(settings)
    article_id = existing.article_id
    entry = library.private.get(article_id)
    if entry is not None:
        if owner is None:
            del library.private[article_id]
            library.save()
        elif owner not in entry.owners:
            _check_quota(library, owner, quota, entry.chars)
            entry.owners.append(owner)
            library.save()
    count = len(list(settings.resolve(settings.articles_dir).glob("*.txt")))
    return IngestResult(info=existing, added=False, articles=count)


def _check_quota(library: Library, owner: str | None, quota: Quota | None, chars: int) -> None:
    if owner is None or quota is None:
        return
    owned = library.owned_by(owner)
    if len(owned) + 1 > quota.max_articles:
        raise IngestError(
            f"this chat already has {len(owned)} of its {quota.max_articles} articles; /forget one to add another"
        )
    used = library.chars_owned_by(owner)
    if used + chars > quota.max_chars:
        raise IngestError(
            f"this article ({chars:,} characters) would take this chat over its {quota.max_chars:,}-character "
            f"limit ({used:,} used); /forget one first"
        )


def forget(settings: Settings, article_ids: list[str], owner: str) -> list[ArticleInfo]:
    """Take ``owner``'s chat-only articles away from it; an article nobody owns any more is removed from the
    index and the articles folder. Shared articles are never touched. Returns what was forgotten.

    The order matters: an article is taken out of the index (``bot.stores.remove_article``) *before* its ledger
    entry goes, so there is never a moment when its chunks are served but no longer marked private. If removing
    fails, the ledger still lists it and the error propagates (nothing is shown to anyone else).
    """
    from bot.stores import build_index, remove_article

    forgotten: list[ArticleInfo] = []
    with _LOCK:
        library = load_library(settings)
        articles_dir = settings.resolve(settings.articles_dir)
        for article_id in article_ids:
            entry = library.private.get(article_id)
            if entry is None or owner not in entry.owners:
                continue
            try:
                info = load_article(articles_dir / f"{article_id}.txt").info
            except ArticleError:
                info = ArticleInfo(article_id=article_id, title=article_id)
            if entry.owners == [owner]:  # the last owner: out of the index first, then out of the ledger
                path = articles_dir / f"{article_id}.txt"
                try:
                    remove_article(settings, article_id, progress_bar=False)
                except ArticleError:
                    if path.exists():
                        raise  # refused (e.g. the only article): nothing changed, the ledger keeps it private
                    # The file went in an earlier removal that did not finish: bring the index in line with
                    # the folder, which takes the article's chunks out.
                    build_index(settings, progress_bar=False)
                del library.private[article_id]
            else:
                entry.owners.remove(owner)
            library.save()
            forgotten.append(info)
    return forgotten


# -- helpers ----------------------------------------------------------------------------------------------


# What the duplicate check knows of each article file: (inode, mtime_ns, size) -> (normalised URL, text digest,
# info). An addition by URL checks twice (before fetching, and again under the lock before writing), and a bot
# adds many articles over its life; without this each check read and cleaned every article file again. A file
# that changes (edited, replaced: ``os.replace`` gives a new inode) is read again. Guarded by ``_LOCK``.
_SEEN: dict[Path, tuple[tuple[int, int, int], str | None, str, ArticleInfo]] = {}


def _find_existing(
    settings: Settings, *, url: str | None = None, digest: str | None = None
) -> ArticleInfo | None:
    """An article already in ``articles_dir`` with this URL or this cleaned text (the caller holds ``_LOCK``)."""
    articles_dir = settings.resolve(settings.articles_dir)
    paths = sorted(articles_dir.glob("*.txt")) if articles_dir.is_dir() else []
    present = set(paths)
    for stale in [p for p in _SEEN if p.parent == articles_dir and p not in present]:
        del _SEEN[stale]
    for path in paths:
        known = _summary(path)
        if known is None:
            continue  # the indexer reports bad files; they are no duplicate of anything
        _, known_url, known_digest, info = known
        if url is not None and known_url == url:
            return info
        if digest is not None and known_digest == digest:
            return info
    return None


def _summary(path: Path) -> tuple[tuple[int, int, int], str | None, str, ArticleInfo] | None:
    """The file's normalised URL, text digest and info, read only when the file changed since the last look."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = file_version(stat)
    known = _SEEN.get(path)
    if known is not None and known[0] == key:
        return known
    try:
        article = load_article(path)
    except ArticleError:
        _SEEN.pop(path, None)
        return None
    info = article.info
    _SEEN[path] = (key, _normal_url(info.url) if info.url else None, _text_digest(article.text), info)
    return _SEEN[path]


def _article_file_text(extracted: ExtractedArticle, *, source: str | None, url: str | None) -> str:
    meta = {"title": extracted.title, "source": source, "date": extracted.date, "url": url}
    header = "".join(f"{key}: {' '.join(value.split())}\n" for key, value in meta.items() if value)
    return f"---\n{header}---\n{extracted.text}\n"


def _text_digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()


def _normal_url(url: str) -> str:
    """The URL without its fragment and with a lower-case scheme and host: what "the same URL" means."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _free_path(articles_dir: Path, slug_source: str, digest: str) -> Path:
    """``<id>.txt``, or ``<id>-<hash>.txt`` when another article already has that id; the file's stem is its
    article id under the one rule (``article_id_from_text``), hash included."""
    slug = article_id_from_text(slug_source) or "article"
    path = articles_dir / f"{slug}.txt"
    if not path.exists():
        return path
    return articles_dir / f"{article_id_from_text(slug[: MAX_ARTICLE_ID_CHARS - 9])}-{digest[:8]}.txt"
