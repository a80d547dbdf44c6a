"""Article files: read, strip site boilerplate, and carry title/source/date as metadata.

An article is a UTF-8 text file. It may open with a front-matter block of ``key: value`` lines between two
``---`` lines (title, source, date, url); without one, the first non-empty line is the title. Boilerplate
that news sites append (``NOW WATCH: …``, newsletter and "Follow … on Facebook" lines) is removed here, so
it is neither indexed nor ever returned as an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ArticleError, QabotError

MAX_ARTICLE_BYTES = 2_000_000
MAX_ARTICLE_ID_CHARS = 80  # the longest article id; bot/server.py checks given ids against the same number

BOILERPLATE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^NOW WATCH\b",
        r"^(SEE ALSO|READ MORE|RELATED|WATCH|SIGN UP|SUBSCRIBE)\s*:",
        r"\bEmails?\s*&\s*Alerts\b",
        r"^Site highlights each day to your inbox\.?$",
        r"^Follow\b.{0,80}\bon\s+(Facebook|Twitter|X|LinkedIn|Instagram|YouTube)\b",
        r"^(Sign up|Subscribe)\b.{0,60}\b(newsletter|inbox|alerts)\b",
        r"^Get the latest\b.{0,80}\b(stories|news)\b.{0,40}(inbox|newsletter)",
        r"^(Advertisement|Story continues below)\.?$",
    )
)
_FRONT_MATTER_KEYS = frozenset({"title", "source", "date", "url"})


@dataclass(frozen=True)
class ArticleInfo:
    """What the bot says about an indexed article (``/sources``) and what each chunk carries as metadata."""

    article_id: str
    title: str
    source: str | None = None
    date: str | None = None
    url: str | None = None


def url_of(articles: Iterable[ArticleInfo], article_id: str) -> str | None:
    """The link of article ``article_id`` in ``articles``; None when it is not there or has no url.

    The one look-up behind the link under an answer, whether the articles come from this process's index or
    from the workers' ``GET /articles`` (``bot.telegram_chat`` asks its answerer for the list, either way).
    """
    return next((article.url for article in articles if article.article_id == article_id), None)


@dataclass(frozen=True)
class Article:
    info: ArticleInfo
    text: str  # cleaned body; answer offsets refer to this text


def is_boilerplate(line: str) -> bool:
    """True for the site furniture that must never be indexed or answered."""
    stripped = line.strip()
    return any(pattern.search(stripped) for pattern in BOILERPLATE_PATTERNS)


def clean_body(raw: str) -> str:
    """Drop boilerplate lines, normalise white space, and keep one blank line between paragraphs."""
    paragraphs = []
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = re.sub(r"[ \t\u00a0]+", " ", line).strip()
        if line and not is_boilerplate(line):
            paragraphs.append(line)
    return "\n\n".join(paragraphs)


def article_id_from_text(text: str) -> str:
    """The one article-id rule: lower-case letters and digits, runs of anything else become one dash, at most
    ``MAX_ARTICLE_ID_CHARS`` long (ids end up in file names, URLs and Telegram messages). '' when nothing is left.
    File names (``article_id_for``), ingested titles and uploaded titles all go through here."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_ARTICLE_ID_CHARS].strip("-")


def article_id_for(path: Path) -> str:
    """A stable id from the file name (``article_id_from_text`` of its stem)."""
    slug = article_id_from_text(path.stem)
    if not slug:
        raise ArticleError(f"{path.name}: cannot derive an article id from this file name")
    return slug


def parse_article(raw: str, article_id: str) -> Article:
    """Split front matter (or a title line) from the body and clean the body."""
    meta: dict[str, str] = {}
    # Windows (CRLF) and old Mac (CR) line ends, so that their front matter is front matter, not text.
    body = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if body.startswith("---\n"):
        header, separator, rest = body[4:].partition("\n---\n")
        if not separator:
            raise ArticleError(f"{article_id}: front matter opened with '---' but never closed")
        for line in header.splitlines():
            key, colon, value = line.partition(":")
            if colon and key.strip().lower() in _FRONT_MATTER_KEYS and value.strip():
                meta[key.strip().lower()] = value.strip()
        body = rest
    if "title" not in meta:
        lines = body.strip().split("\n", 1)
        meta["title"] = lines[0].strip()
        body = lines[1] if len(lines) > 1 else ""
    text = clean_body(body)
    if not meta["title"] or not text:
        raise ArticleError(f"{article_id}: no title or no text left after removing boilerplate")
    info = ArticleInfo(
        article_id=article_id,
        title=meta["title"],
        source=meta.get("source"),
        date=meta.get("date"),
        url=meta.get("url"),
    )
    return Article(info=info, text=text)


def read_bounded(path: Path, limit: int, error: type[QabotError] = ArticleError) -> bytes:
    """A file's bytes, or ``error`` saying why not (missing, not a file, over ``limit`` bytes) before reading it.

    The one file rule for articles on disk and files handed to ``bot.ingest``."""
    try:
        size = path.stat().st_size
    except OSError as cause:
        raise error(f"cannot read {path}: {cause.strerror or cause}") from cause
    if not path.is_file():
        raise error(f"{path} is not a file")
    if size > limit:
        raise error(f"{path.name} is {size:,} bytes; the limit is {limit:,}")
    return path.read_bytes()


def decode_text(data: bytes, name: str, error: type[QabotError] = ArticleError) -> str:
    """UTF-8 text, or ``error`` naming ``name``: a NUL byte means binary, and an invalid byte is located."""
    if b"\x00" in data:
        raise error(f"{name} looks binary; text articles must be UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as cause:
        raise error(f"{name} is not UTF-8 text ({cause.reason} at byte {cause.start})") from cause


def load_article(path: Path) -> Article:
    """Read one article file with clear errors for missing, huge, binary or empty files."""
    raw = decode_text(read_bounded(path, MAX_ARTICLE_BYTES), path.name)
    return parse_article(raw, article_id_for(path))


def load_articles(directory: Path) -> list[Article]:
    """Every ``*.txt`` article in ``directory``, sorted by id so that builds are reproducible."""
    if not directory.is_dir():
        raise ArticleError(f"articles folder {directory} does not exist")
    articles = [load_article(path) for path in sorted(directory.glob("*.txt"))]
    if not articles:
        raise ArticleError(f"no *.txt articles in {directory}")
    return articles
