"""QAService: the one answering service that the CLI, the Telegram bot and evaluation share.

Models and the index are loaded once; ``answer`` is safe to call from many threads (one pipeline run at a
time: on 2 cores, parallel runs would only fight over the same cores). Repeated questions are served from a
bounded cache that is dropped whenever the index on disk changes (``qabot index add`` while the bot runs).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace

from haystack import Document, ExtractedAnswer

from bot.answer import Alternative, Answer, Source
from bot.articles import ArticleInfo
from bot.config import Settings
from bot.errors import InvalidQuestionError
from bot.indexing import LoadedIndex, current_build_name, load_index
from bot.models import reader_verifier
from bot.pipeline import bm25_store_from, build_query_pipeline, refill_bm25_store
from bot.verifier import span_features

log = logging.getLogger(__name__)

# Runner-up spans below this score are noise, not alternatives worth showing.
MIN_ALTERNATIVE_SCORE = 0.1
# Without a verifier the confidence is the reader's Platt-calibrated P(right): abstain below even odds.
DEFAULT_NO_ANSWER_THRESHOLD = 0.5
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class QAService:
    """Question in, ``Answer`` out: retrieval (FAISS + BM25, fused) and the extractive reader."""

    def __init__(self, settings: Settings, index: LoadedIndex) -> None:
        self.settings = settings
        self._index = index
        self._bm25_store = bm25_store_from(index.store)
        self._pipeline = build_query_pipeline(settings, index.store, self._bm25_store)
        self._verifier = reader_verifier(settings)
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, Answer] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> QAService:
        """Load the index and every model now, so the first question is as fast as the next."""
        service = cls(settings, load_index(settings))
        service._pipeline.warm_up()
        return service

    # -- public API ---------------------------------------------------------------------------------------

    def articles(self) -> list[ArticleInfo]:
        return self._index.articles

    @property
    def index_fingerprint(self) -> str:
        return self._index.fingerprint

    def validate_question(self, question: str) -> str:
        """The question as it will be asked, or InvalidQuestionError saying what is wrong with it."""
        if not isinstance(question, str):
            raise InvalidQuestionError("the question must be text")
        cleaned = " ".join(_CONTROL_CHARS.sub(" ", question).split())
        if not cleaned:
            raise InvalidQuestionError("the question is empty")
        limit = self.settings.answers.max_question_chars
        if len(cleaned) > limit:
            raise InvalidQuestionError(f"the question is too long: {len(cleaned):,} characters; the limit is {limit:,}")
        return cleaned

    def answer(self, question: str) -> Answer:
        """Answer one question (see ``answer_many``)."""
        return self.answer_many([question])[0]

    def answer_many(self, questions: Iterable[str]) -> list[Answer]:
        """Answer several questions in order, reading the uncached ones in one batch.

        Every question is validated before any work is done, so one bad question changes nothing.
        """
        cleaned = [self.validate_question(q) for q in questions]
        with self._lock:
            self._reload_if_index_changed()
            found = {q: self._from_cache(q) for q in cleaned}
            missing = list(dict.fromkeys(q for q, a in found.items() if a is None))
            if missing:
                for question, (answers, _) in zip(missing, self._pipeline.run(missing), strict=True):
                    found[question] = self._to_answer(question, answers)
                    self._remember(question, found[question])
        return [found[q] for q in cleaned]  # type: ignore[misc]

    def answer_with_passages(
        self, question: str, no_answer_threshold: float | None = None
    ) -> tuple[Answer, list[Document]]:
        """Answer without the cache and also return the passages the reader saw (for evaluation).

        ``no_answer_threshold=0`` returns the best span even when the service would abstain, which is what
        a threshold sweep needs.
        """
        question = self.validate_question(question)
        with self._lock:
            self._reload_if_index_changed()
            ((answers, passages),) = self._pipeline.run([question])
        return self._to_answer(question, answers, no_answer_threshold), passages

    @property
    def no_answer_threshold(self) -> float:
        """Below this served confidence the bot says the article doesn't say: ``reader.no_answer_threshold``
        when set, else the verifier's fitted threshold, else 0.5 (the reader's calibrated score)."""
        configured = self.settings.reader.no_answer_threshold
        if configured is not None:
            return configured
        return self._verifier.threshold if self._verifier is not None else DEFAULT_NO_ANSWER_THRESHOLD

    def candidates(self, question: str) -> tuple[list[ExtractedAnswer], list[Document]]:
        """The reader's distinct spans, best first, scored by the reader alone (no verifier, no threshold),
        and the passages read: what ``training/fit_verifier.py`` fits the verifier on."""
        question = self.validate_question(question)
        with self._lock:
            self._reload_if_index_changed()
            ((answers, passages),) = self._pipeline.run([question])
        return _distinct_spans(answers, self.settings.reader.max_answer_chars), passages

    # -- internals ----------------------------------------------------------------------------------------

    @staticmethod
    def _cache_key(question: str) -> str:
        return question.casefold().rstrip("?!. ")

    def _from_cache(self, question: str) -> Answer | None:
        cached = self._cache.get(self._cache_key(question))
        if cached is None:
            return None
        self._cache.move_to_end(self._cache_key(question))
        return cached if cached.question == question else _with_question(cached, question)

    def _remember(self, question: str, answer: Answer) -> None:
        if self.settings.answers.cache_size:
            self._cache[self._cache_key(question)] = answer
            while len(self._cache) > self.settings.answers.cache_size:
                self._cache.popitem(last=False)

    def _reload_if_index_changed(self) -> None:
        index_dir = self.settings.resolve(self.settings.index_dir)
        if current_build_name(index_dir) in (None, self._index.build_dir.name):
            return
        new_index = load_index(self.settings)
        log.info("index changed on disk: now %s", new_index.build_dir.name)
        self._index.store.documents, self._index.store.index = new_index.store.documents, new_index.store.index
        self._index.store.id_map, self._index.store.inverse_id_map = (
            new_index.store.id_map,
            new_index.store.inverse_id_map,
        )
        self._index.manifest, self._index.build_dir = new_index.manifest, new_index.build_dir
        refill_bm25_store(self._bm25_store, self._index.store)
        self._cache.clear()

    def _verified(self, question: str, spans: list[ExtractedAnswer]) -> list[ExtractedAnswer]:
        """Each span's score replaced by the verifier's P(right) (the reader's order is kept)."""
        if self._verifier is None:
            return spans
        verifier = self._verifier
        return [
            replace(span, score=verifier.probability(verifier_features(question, spans, i)))
            for i, span in enumerate(spans)
        ]

    def _to_answer(self, question: str, extracted: list[ExtractedAnswer], threshold: float | None = None) -> Answer:
        spans = self._verified(question, _distinct_spans(extracted, self.settings.reader.max_answer_chars))
        threshold = self.no_answer_threshold if threshold is None else threshold
        if not spans or spans[0].score < threshold:
            best = spans[0].score if spans else 0.0
            return Answer(question=question, text=None, score=1.0 - best)
        best, *rest = spans
        alternatives = []
        seen = {_normal(best.data or "")}
        for span in rest:
            if len(alternatives) >= self.settings.answers.alternatives or span.score < MIN_ALTERNATIVE_SCORE:
                break
            text = _normal(span.data or "")
            if any(text in other or other in text for other in seen):
                continue  # a fragment or an extension of an answer already shown
            seen.add(text)
            context, _, _ = _sentence_around(span)
            alternatives.append(
                Alternative(text=span.data or "", score=span.score, context=context, source=_source(span))
            )
        context, context_start, context_end = _sentence_around(best)
        return Answer(
            question=question,
            text=best.data,
            score=best.score,
            context=context,
            context_start=context_start,
            context_end=context_end,
            source=_source(best),
            alternatives=tuple(alternatives),
        )


def verifier_inputs(question: str, spans: list[ExtractedAnswer], index: int) -> dict:
    """What the verifier reads about ``spans[index]`` among the question's distinct spans (``bot.verifier``)."""
    span = spans[index]
    passage = span.document.content if span.document is not None else None
    sentence = _sentence_around(span)[0]
    return {
        "question": question,
        "answer": span.data or "",
        "reader_score": span.score,
        "sentence": sentence,
        "passage": passage or sentence,
        "other_scores": [other.score for i, other in enumerate(spans) if i != index],
    }


def verifier_features(question: str, spans: list[ExtractedAnswer], index: int):
    """The verifier's features for ``spans[index]`` (``bot.verifier.span_features``)."""
    return span_features(**verifier_inputs(question, spans, index))


def _with_question(answer: Answer, question: str) -> Answer:
    return replace(answer, question=question)


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def _trimmed(answer: ExtractedAnswer) -> ExtractedAnswer | None:
    """Drop white space and dangling punctuation at the span's edges, keeping offsets consistent."""
    text = answer.data or ""
    offset = answer.document_offset
    if offset is None:
        return None
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or text[start] in ",;:—–-"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:—–-("):
        end -= 1
    if start == end:
        return None
    span = ExtractedAnswer.Span(offset.start + start, offset.start + end)
    return replace(answer, data=text[start:end], document_offset=span)


def _article_span(answer: ExtractedAnswer) -> tuple[str, int, int]:
    document: Document = answer.document  # type: ignore[assignment]
    base = document.meta.get("start", 0)
    return document.meta.get("article_id", ""), base + answer.document_offset.start, base + answer.document_offset.end  # type: ignore[union-attr]


def _distinct_spans(extracted: list[ExtractedAnswer], max_chars: int) -> list[ExtractedAnswer]:
    """Best-first spans with one entry per place in the article (overlapping chunks repeat answers)."""
    kept: list[ExtractedAnswer] = []
    taken: list[tuple[str, int, int]] = []
    for raw in sorted(extracted, key=lambda a: a.score, reverse=True):
        if raw.data is None or raw.document is None:
            continue
        answer = _trimmed(raw)
        if answer is None or len(answer.data or "") > max_chars:
            continue
        article, start, end = _article_span(answer)
        if any(a == article and start < e and s < end for a, s, e in taken):
            continue
        taken.append((article, start, end))
        kept.append(answer)
    return kept


def _sentence_around(answer: ExtractedAnswer) -> tuple[str, int, int]:
    """The sentence(s) of the chunk that contain the answer, and the answer's offsets inside them."""
    document: Document = answer.document  # type: ignore[assignment]
    content = document.content or ""
    start, end = answer.document_offset.start, answer.document_offset.end  # type: ignore[union-attr]
    starts = document.meta.get("sentence_starts") or [0]
    ends = document.meta.get("sentence_ends") or [len(content)]
    first = max((i for i, s in enumerate(starts) if s <= start), default=0)
    last = min((i for i, e in enumerate(ends) if e >= end), default=len(ends) - 1)
    sentence_start, sentence_end = starts[first], ends[max(first, last)]
    return content[sentence_start:sentence_end], start - sentence_start, end - sentence_start


def _source(answer: ExtractedAnswer) -> Source:
    article_id, start, end = _article_span(answer)
    document: Document = answer.document  # type: ignore[assignment]
    return Source(article_id=article_id, title=document.meta.get("title", article_id), start=start, end=end)
