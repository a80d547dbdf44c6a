"""Turn fetched bytes into an article's text and metadata: HTML with trafilatura, PDF with pypdf, .md/.txt.

trafilatura finds the main text of a page and leaves out its furniture (navigation, cookie banners, related
links, newsletter boxes, comments, footers) — exactly what must never be indexed or answered. pypdf reads the
text layer of a PDF; its hard-wrapped lines are joined back into paragraphs so sentences stay whole for the
sentence chunker. What comes out is judged once more: too little text is "not an article" (a login page, an
error page, a scanned PDF without a text layer).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from bot.errors import ArticleError, IngestError

log = logging.getLogger(__name__)

_PASSWORD_FIELD = re.compile(rb"<input[^>]+type\s*=\s*[\"']?password", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")
# A login page may carry a paragraph or two of text around its form; an article with a password box
# (a paywall's "log in to read more") still has far more than this.
_LOGIN_PAGE_MAX_WORDS = 300


@dataclass(frozen=True)
class ExtractedArticle:
    title: str
    text: str  # paragraphs separated by blank lines
    date: str | None = None
    author: str | None = None
    site: str | None = None


def word_count(text: str) -> int:
    return len(text.split())


def extract_html(data: bytes, url: str | None = None) -> ExtractedArticle:
    """Main text and metadata of an HTML page; IngestError when there is no article in it."""
    import trafilatura
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # its timeout uses signals: main thread only; we run in threads
    document = trafilatura.bare_extraction(
        data,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        include_tables=True,
        favor_precision=True,
        deduplicate=False,
        config=config,
    )
    text = _paragraphs((document.text or "") if document is not None else "")
    if _PASSWORD_FIELD.search(data) and word_count(text) < _LOGIN_PAGE_MAX_WORDS:
        raise IngestError("this looks like a login page (a password form and little text), not an article")
    if document is None or not text:
        raise IngestError("no article text found on this page")
    title = _one_line(document.title) or _first_line(text)
    first, _, rest = text.partition("\n\n")
    if first == title and rest:  # the headline is kept as the title, not repeated as the first paragraph
        text = rest
    return ExtractedArticle(
        title=title,
        text=text,
        date=_one_line(document.date),
        author=_one_line(document.author),
        site=_one_line(document.sitename) or _one_line(document.hostname),
    )


def extract_pdf(data: bytes) -> ExtractedArticle:
    """The text layer of a PDF, re-flowed into paragraphs; title from its metadata or its first line."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError("this PDF is encrypted; send one that opens without a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata = reader.metadata
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        raise IngestError(f"this PDF cannot be read ({type(error).__name__}: {error})") from error
    text = "\n\n".join(paragraph for page in pages if (paragraph := reflow(page)))
    if not text:
        raise IngestError("this PDF has no text layer (a scan?); only PDFs with selectable text can be added")
    title = _one_line(metadata.title if metadata else None)
    author = _one_line(metadata.author if metadata else None)
    if not title:
        title, _, rest = text.partition("\n\n")
        title, text = _one_line(title) or "", rest.strip()
    date = None
    if metadata is not None and metadata.creation_date is not None:
        date = metadata.creation_date.date().isoformat()
    return ExtractedArticle(title=title, text=text, date=date, author=author)


def extract_markdown(raw: str) -> ExtractedArticle:
    """A Markdown article: the first heading is the title; links, emphasis and images become plain text."""
    lines = raw.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    title = None
    kept: list[str] = []
    in_code = False
    for line in lines:
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and title is None:
            title = _inline_markdown(heading.group(1))
            continue
        kept.append(_inline_markdown(re.sub(r"^\s{0,3}(#{1,6}|>|[-*+]|\d+\.)\s+", "", line)))
    text = _paragraphs("\n".join(kept))
    if title is None:
        title, _, text = text.partition("\n\n")
    return ExtractedArticle(title=_one_line(title) or "", text=text.strip())


def extract_text(raw: str) -> ExtractedArticle:
    """A plain-text article: front matter or first-line title, exactly as ``bot.articles`` reads .txt files."""
    from bot.articles import parse_article

    try:
        article = parse_article(raw, "upload")
    except ArticleError as error:
        raise IngestError(str(error).removeprefix("upload: ")) from error
    info = article.info
    return ExtractedArticle(title=info.title, text=article.text, date=info.date, site=info.source)


def reflow(page: str) -> str:
    """Join a PDF page's hard-wrapped lines into paragraphs (blank line between them).

    A line ends its paragraph when the page says so (an empty line) or when it ends a sentence and is
    clearly shorter than the page's full lines; words hyphenated at a line end are joined again.
    """
    lines = [line.strip() for line in page.replace("\r", "\n").split("\n")]
    full = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current = ""
    for line in lines:
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        hyphenated = current.endswith("-") and line[:1].islower()
        current = current[:-1] + line if hyphenated else f"{current} {line}".strip()
        if _SENTENCE_END.search(line) and len(line) < 0.8 * full:
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)


def _paragraphs(text: str) -> str:
    """One blank line between non-empty paragraphs, runs of white space collapsed."""
    return "\n\n".join(line for line in (" ".join(part.split()) for part in text.split("\n")) if line)


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0][:200]


def _one_line(value: object) -> str | None:
    """A metadata value fit for one front-matter line (no line breaks, no leading dashes), or None."""
    if value is None:
        return None
    text = " ".join(str(value).split()).strip()
    return text.lstrip("-").strip() or None


def _inline_markdown(line: str) -> str:
    line = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", line)  # images
    line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)  # links keep their text
    line = re.sub(r"(\*\*|__|\*|_|`)(\S.*?\S|\S)\1", r"\2", line)  # emphasis and code spans
    return line
