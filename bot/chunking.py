"""Sentence-aware chunking: answer sentences are never cut, neighbouring chunks overlap by whole sentences.

Haystack's sentence splitter needs NLTK data from the internet, so sentences are found with a small rule
set tuned for news prose (closing quotes after the full stop, abbreviations, headings as their own lines).
Each chunk keeps its character offsets into the article and the offsets of its sentences, so an answer can
be traced back to the sentence it comes from without re-splitting at question time.
"""

from __future__ import annotations

import re
from dataclasses import asdict

from haystack import Document, component

from bot.articles import Article
from bot.config import ChunkingSettings

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "inc",
        "ltd",
        "co",
        "corp",
        "dept",
        "est",
        "fig",
        "no",
        "approx",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
        "u.n",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
    ]
)
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, then white space.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``; paragraph breaks always end a sentence."""
    spans: list[tuple[int, int]] = []
    for paragraph in re.finditer(r"[^\n]+", text):
        start = paragraph.start()
        para_text = paragraph.group()
        for match in _BOUNDARY.finditer(para_text):
            end = match.end()
            if _is_sentence_end(para_text, match.start(), end):
                spans.append((start, paragraph.start() + end))
                start = paragraph.start() + end
                while start < paragraph.end() and text[start].isspace():
                    start += 1
        if start < paragraph.end():
            spans.append((start, paragraph.end()))
    return spans


def split_long_spans(text: str, spans: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """``spans`` with every span over ``max_chars`` cut into pieces of at most ``max_chars``.

    Why: a "sentence" with no full stop (a table, a list, a scraped page on one line) would otherwise become one
    chunk of any size; a 1.5 MB one became one chunk that the reader took minutes and most of a GB to read.
    Cuts fall on the last space before the limit, or at the limit inside a word longer than it.
    """
    pieces: list[tuple[int, int]] = []
    for start, end in spans:
        while end - start > max_chars:
            cut = text.rfind(" ", start + 1, start + max_chars + 1)
            if cut <= start:
                cut = start + max_chars  # no space to cut at: one word longer than the limit
            piece_end = cut
            while piece_end > start + 1 and text[piece_end - 1].isspace():
                piece_end -= 1
            pieces.append((start, piece_end))
            start = cut
            while start < end and text[start].isspace():
                start += 1
        if start < end:
            pieces.append((start, end))
    return pieces


def _is_sentence_end(paragraph: str, punct_start: int, end: int) -> bool:
    following = paragraph[end:].lstrip()
    if not following:
        return True
    if not (following[0].isupper() or following[0].isdigit() or following[0] in "\"“‘'(["):
        return False
    word = re.search(r"([\w.]+)$", paragraph[:punct_start])
    if paragraph[punct_start] == "." and word:
        token = word.group(1).lower()
        if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
            return False
    return True


@component
class SentenceChunker:
    """Haystack component: whole-article Documents in, overlapping sentence-window chunks out."""

    def __init__(self, settings: ChunkingSettings) -> None:
        self.settings = settings

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        chunks: list[Document] = []
        for document in documents:
            chunks.extend(self._chunk(document))
        return {"documents": chunks}

    def _chunk(self, document: Document) -> list[Document]:
        text = document.content or ""
        spans = split_long_spans(text, sentence_spans(text), self.settings.max_chunk_chars)
        size, overlap = self.settings.sentences_per_chunk, self.settings.overlap_sentences
        chunks = []
        first = 0
        while first < len(spans):
            last = first
            while (
                last + 1 < len(spans)
                and last + 1 - first < size
                and spans[last + 1][1] - spans[first][0] <= self.settings.max_chunk_chars
            ):
                last += 1
            start, end = spans[first][0], spans[last][1]
            meta = {
                **document.meta,
                "start": start,
                "end": end,
                "sentence_starts": [s - start for s, _ in spans[first : last + 1]],
                "sentence_ends": [e - start for _, e in spans[first : last + 1]],
            }
            chunks.append(Document(content=text[start:end], meta=meta))
            if last + 1 >= len(spans):
                break
            first = max(first + 1, last + 1 - overlap)
        return chunks


def article_document(article: Article) -> Document:
    """The whole cleaned article as one Haystack Document, metadata included, ready for chunking."""
    return Document(content=article.text, meta={k: v for k, v in asdict(article.info).items() if v is not None})
