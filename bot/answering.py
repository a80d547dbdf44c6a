"""QAService: the one answering service that the CLI, the Telegram bot and evaluation share.

Models and the index are loaded once; ``answer`` is safe to call from many threads (one pipeline run at a
time: on 2 cores, parallel runs would only fight over the same cores). Repeated questions are served from a
bounded cache that is dropped whenever the index changes (``qabot index add`` while the bot runs, or another
worker writing the shared PostgreSQL store).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import NamedTuple

from haystack import Document, ExtractedAnswer

from bot.answer import Alternative, Answer, Source
from bot.articles import ArticleInfo
from bot.config import Settings
from bot.errors import QabotError
from bot.models import reader_verifier
from bot.pipeline import QueryPipeline, build_reader, build_text_embedder
from bot.question_rules import clean_question, max_question_tokens
from bot.stores import ArticleIndex, load_index

log = logging.getLogger(__name__)

# Runner-up spans below this score are noise, not alternatives worth showing.
MIN_ALTERNATIVE_SCORE = 0.1

# After a failed reload (CURRENT names a build that cannot be read), wait this long before trying it again.
RELOAD_RETRY_S = 30.0

# The article ids a question may be answered from (a chat's own articles, one focused article); None = all.
ArticleScope = frozenset[str] | None


class _Query(NamedTuple):
    """One question as the service reads it: what the reader reads, what retrieval searches, which articles."""

    question: str
    retrieval_query: str
    scope: ArticleScope


# Without a verifier the confidence is the reader's Platt-calibrated P(right): abstain below even odds.
DEFAULT_NO_ANSWER_THRESHOLD = 0.5


class QAService:
    """Question in, ``Answer`` out: retrieval (FAISS + BM25, fused) and the extractive reader."""

    def __init__(self, settings: Settings, index: ArticleIndex) -> None:
        self.settings = settings
        self._index = index
        retrieval, passages_from = index.retrieval_pipeline(settings, build_text_embedder(settings))
        self._pipeline = QueryPipeline(retrieval, build_reader(settings), passages_from)
        self._verifier = reader_verifier(settings)
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, Answer] = OrderedDict()
        # (build name, monotonic time of the next try, why it failed) while CURRENT names an unreadable build
        self._unreadable: tuple[str, float, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> QAService:
        """Load the index (FAISS build or PostgreSQL store, ``bot.stores``) and every model now, so the first
        question is as fast as the next."""
        service = cls(settings, load_index(settings))
        service._pipeline.warm_up()
        return service

    # -- public API ---------------------------------------------------------------------------------------

    def articles(self) -> list[ArticleInfo]:
        """The indexed articles, as of the build on disk now (``qabot index add`` while the bot runs).

        Never waits for a running answer (the Telegram bot calls this on its event loop): while one runs,
        the articles of the index in use are returned, and that answer's caller has already reloaded.
        """
        if self._lock.acquire(blocking=False):
            try:
                self._reload_if_index_changed()
            finally:
                self._lock.release()
        return self._index.articles

    @property
    def index_fingerprint(self) -> str:
        return self._index.fingerprint

    def check_index(self) -> int:
        """Chunks in the index that the next answer reads (reloaded if it changed on disk): for health checks.

        Raises what answering would raise (IndexMissingError, IndexCorruptError), so a health check fails
        exactly when questions would.
        """
        with self._lock:
            self._reload_if_index_changed()
            return self._index.count_chunks()

    @property
    def index_problem(self) -> str | None:
        """Why the build on disk is not the one in use (it could not be read), or None when they agree.

        Answers still come from the index in memory meanwhile; health checks report this so an operator sees it.
        """
        return self._unreadable[2] if self._unreadable is not None else None

    def validate_question(self, question: str) -> str:
        """The question as it will be asked, or InvalidQuestionError saying what is wrong with it.

        The rule (``bot.question_rules``) counts the question in the reader's own tokens, so a question that
        passes always fits the reader's window.
        """
        return clean_question(
            question,
            max_chars=self.settings.answers.max_question_chars,
            max_tokens=max_question_tokens(self.settings.reader),
            count_tokens=self._pipeline.question_tokens,
        )

    def answer(self, question: str, scope: ArticleScope = None) -> Answer:
        """Answer one question (see ``answer_many``)."""
        return self.answer_many([question], [scope])[0]

    def answer_many(
        self,
        questions: Iterable[str],
        scopes: Sequence[ArticleScope] | None = None,
        retrieval_queries: Sequence[str | None] | None = None,
    ) -> list[Answer]:
        """Answer several questions in order, reading the uncached ones in one batch.

        ``scopes[i]`` limits question i to those article ids (a metadata filter on both retrievers), so chats
        with their own articles can share a batch without seeing each other's. ``retrieval_queries[i]``
        optionally gives a different text for retrieval to search with (a follow-up expanded with the previous
        turn, see bot.conversation); None means the question itself. Every question is validated before any
        work is done, so one bad question changes nothing.
        """
        cleaned = [self.validate_question(q) for q in questions]
        scopes = list(scopes) if scopes is not None else [None] * len(cleaned)
        queries = list(retrieval_queries) if retrieval_queries is not None else [None] * len(cleaned)
        if not len(scopes) == len(queries) == len(cleaned):
            raise ValueError("scopes and retrieval_queries must have one entry per question")
        keys = [_Query(q, " ".join(r.split()) if r else q, s) for q, r, s in zip(cleaned, queries, scopes, strict=True)]
        with self._lock:
            self._reload_if_index_changed()
            found = {key: self._from_cache(key) for key in keys}
            missing = list(dict.fromkeys(key for key, a in found.items() if a is None))
            if missing:
                readings = self._pipeline.run(
                    [k.question for k in missing], [k.scope for k in missing], [k.retrieval_query for k in missing]
                )
                for key, (answers, _) in zip(missing, readings, strict=True):
                    found[key] = self._to_answer(key.question, answers)
                    self._remember(key, found[key])
        return [found[key] for key in keys]  # type: ignore[misc]

    def answer_with_passages(
        self, question: str, no_answer_threshold: float | None = None, retrieval_query: str | None = None
    ) -> tuple[Answer, list[Document]]:
        """Answer without the cache and also return the passages the reader saw (for evaluation).

        ``no_answer_threshold=0`` returns the best span even when the service would abstain, which is what
        a threshold sweep needs.
        """
        question, answers, passages = self._read_uncached(question, retrieval_query)
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
        _, answers, passages = self._read_uncached(question)
        return _distinct_spans(answers, self.settings.reader.max_answer_chars), passages

    # -- internals ----------------------------------------------------------------------------------------

    def _read_uncached(
        self, question: str, retrieval_query: str | None = None
    ) -> tuple[str, list[ExtractedAnswer], list[Document]]:
        """One question read past the cache (the evaluation and verifier-fitting paths): validated, then run
        under the lock on the index current now. The validated question, the reader's raw spans, the passages."""
        question = self.validate_question(question)
        with self._lock:
            self._reload_if_index_changed()
            ((answers, passages),) = self._pipeline.run([question], None, [retrieval_query or question])
        return question, answers, passages

    @staticmethod
    def _cache_key(query: _Query) -> str:
        key = query.question.casefold().rstrip("?!. ")
        if query.retrieval_query != query.question:
            key += "\n" + query.retrieval_query.casefold()
        return key if query.scope is None else key + "\x00" + "\x00".join(sorted(query.scope))

    def _from_cache(self, query: _Query) -> Answer | None:
        key = self._cache_key(query)
        cached = self._cache.get(key)
        if cached is None:
            return None
        self._cache.move_to_end(key)
        return cached if cached.question == query.question else _with_question(cached, query.question)

    def _remember(self, query: _Query, answer: Answer) -> None:
        if self.settings.answers.cache_size:
            self._cache[self._cache_key(query)] = answer
            while len(self._cache) > self.settings.answers.cache_size:
                self._cache.popitem(last=False)

    def _reload_if_index_changed(self) -> None:
        """Swap in the index version that is current now when it changed: a fresh (index, retrievers) bundle,
        same models, and the answer cache dropped.

        Cheap when nothing changed: one read of the small ``CURRENT`` file (FAISS), or one ``SELECT`` of the
        store's version row (PostgreSQL, where another worker or ``qabot index add`` may have written). An
        index that cannot be read is not swapped in: the service keeps answering from the one it holds, logs a
        warning, and tries again after ``RELOAD_RETRY_S`` seconds or as soon as another version is current.
        Called under ``_lock``.
        """
        name = self._index.current_marker(self.settings)
        if name is None or name == self._index.marker:
            self._unreadable = None  # the marker names the index in use again
            return
        if self._unreadable is not None and self._unreadable[0] == name and time.monotonic() < self._unreadable[1]:
            return
        try:
            new_index = self._index.reload(self.settings)
        except QabotError as error:
            self._unreadable = (name, time.monotonic() + RELOAD_RETRY_S, str(error))
            log.warning(
                "index changed but cannot be loaded (%s); answering from %s, retrying in %.0f s",
                error,
                self._index.marker,
                RELOAD_RETRY_S,
            )
            return
        try:
            pipeline = self._pipeline.with_index(self.settings, new_index)
        except Exception:
            # The question embedder left the old pipeline before the new one failed: rebuild retrieval over the
            # index in use with a fresh embedder, so a failed swap never leaves the service unable to answer.
            log.exception("could not switch to %s; answering from %s", new_index.marker, self._index.marker)
            retrieval, passages_from = self._index.retrieval_pipeline(self.settings, build_text_embedder(self.settings))
            retrieval.warm_up()
            self._pipeline = QueryPipeline(retrieval, self._pipeline.reader, passages_from)
            self._unreadable = (name, time.monotonic() + RELOAD_RETRY_S, f"could not switch to {new_index.marker}")
            return
        self._pipeline = pipeline
        self._index = new_index
        self._unreadable = None
        self._cache.clear()
        log.info("index changed: now %s", new_index.marker)

    def _verified(self, question: str, spans: list[ExtractedAnswer]) -> list[ExtractedAnswer]:
        """Each span's score replaced by the verifier's P(right) (the reader's order is kept)."""
        if self._verifier is None:
            return spans
        scores = self._verifier.scores([verifier_inputs(question, spans, i) for i in range(len(spans))])
        return [replace(span, score=float(score)) for span, score in zip(spans, scores, strict=True)]

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
            if len(alternatives) >= self.settings.answers.alternatives:
                break
            if span.score < MIN_ALTERNATIVE_SCORE:
                continue  # in the reader's order, not the verifier's: a later span may still score enough
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
