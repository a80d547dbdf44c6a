"""BM25 over the chunks as a sparse matrix (PyPI ``bm25s``), persisted with each index build.

Why not Haystack's ``InMemoryBM25Retriever``: it scores every chunk in Python on every question (20 ms at
3,168 chunks, 36 ms at 5,242; issue 10). bm25s precomputes each (term, chunk) score at build time, so a
question costs one sparse column sum over the chunks that contain its terms.

Same ranking as the retriever it replaces (Haystack's BM25Plus, k1=1.5, b=0.75, delta=1), not bm25s's own
"bm25+", because the two differ in three ways that each move chunks on our questions:

- tokens: Haystack lower-cases, NFC-normalises and keeps every run of word characters, one-letter tokens
  included, with no stop words and no stemming (``bm25s.tokenize`` drops one-letter tokens and English stop
  words by default);
- the "+ delta" lower bound: Haystack adds it only for query terms that occur in the chunk, so a chunk that
  matches a term gains ``delta × idf``; bm25s's BM25+ adds it to every chunk, matching or not, which removes
  that gain (rare names such as "Fateh" count for much less);
- idf: Haystack uses ``log(1 + (N - df + .5) / (df + .5))`` (Lucene's), bm25s's BM25+ uses ``log((N + 1) / df)``.

So the index is built with bm25s's Lucene scoring and its stored scores are turned into Haystack's BM25+
in one vectorised step: ``idf × ((1 + k1) × tf-part + delta) = (1 + k1) × lucene + delta × idf``. A
question's repeated words count once, as in Haystack, and ties keep the chunks' stored order.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, component
from haystack.document_stores.in_memory.document_store import _DEFAULT_BM25_TOKENIZATION_REGEX
from haystack.utils.filters import document_matches_filter

K1, B, DELTA = 1.5, 0.75, 1.0
DOC_IDS_FILE = "doc_ids.json"
# Haystack's own default BM25 pattern (runs of word characters, CJK characters one by one), so that the
# tokens stay the ones the previous retriever used.
_TOKEN = re.compile(_DEFAULT_BM25_TOKENIZATION_REGEX)


def tokenize(text: str) -> list[str]:
    """Lower-cased, NFC-normalised word tokens, exactly as Haystack's in-memory BM25 splits text."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text.lower()))


class KeywordIndex:
    """bm25s scores of every (term, chunk) pair plus the chunks, in the order the index was built."""

    def __init__(self, model: Any, documents: list[Document]) -> None:
        self._model = model
        self.documents = documents
        self._article_ids = np.array([d.meta.get("article_id", "") for d in documents], dtype=object)

    @classmethod
    def build(cls, documents: list[Document]) -> KeywordIndex:
        bm25s = _bm25s()
        model = bm25s.BM25(k1=K1, b=B, method="lucene", idf_method="lucene", dtype="float64")
        corpus = [tokenize(d.content or "") or [""] for d in documents]
        model.index(corpus, show_progress=False)
        _lucene_to_haystack_bm25plus(model)
        return cls(model, documents)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / DOC_IDS_FILE).write_text(json.dumps([d.id for d in self.documents]), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, documents: list[Document]) -> KeywordIndex:
        """Open a saved index over ``documents`` (the build's chunks); ValueError if the two disagree."""
        bm25s = _bm25s()
        ids = json.loads((folder / DOC_IDS_FILE).read_text(encoding="utf-8"))
        by_id = {d.id: d for d in documents}
        if len(ids) != len(documents) or any(i not in by_id for i in ids):
            raise ValueError(f"the BM25 index in {folder} does not cover the build's {len(documents)} chunks")
        model = bm25s.BM25.load(str(folder), show_progress=False)
        if model.scores["num_docs"] != len(ids):
            raise ValueError(f"the BM25 index in {folder} has {model.scores['num_docs']} rows for {len(ids)} chunks")
        return cls(model, [by_id[i] for i in ids])

    def __len__(self) -> int:
        return len(self.documents)

    def search(self, query: str, top_k: int, filters: dict[str, Any] | None = None) -> list[Document]:
        """The ``top_k`` best chunks with a positive score, best first; ``filters`` as Haystack's."""
        vocabulary = self._model.vocab_dict
        terms = [vocabulary[t] for t in dict.fromkeys(tokenize(query)) if t in vocabulary]
        if not terms or top_k <= 0 or not self.documents:
            return []
        scores = self._model.get_scores(terms)
        if filters:
            scores = scores * self._filter_mask(filters)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > top_k:
            threshold = np.partition(scores[candidates], -top_k)[-top_k]
            candidates = candidates[scores[candidates] >= threshold]
        # best first; equal scores keep the stored order (as Haystack's stable sort does)
        order = candidates[np.lexsort((candidates, -scores[candidates]))][:top_k]
        return [replace(self.documents[i], score=float(scores[i])) for i in order]

    def _filter_mask(self, filters: dict[str, Any]) -> np.ndarray:
        """1 for chunks the filter keeps; ``meta.article_id`` ==/in filters without a Python loop per chunk."""
        field, operator, value = filters.get("field"), filters.get("operator"), filters.get("value")
        if field == "meta.article_id" and operator in ("==", "in"):
            wanted = [value] if operator == "==" else list(value)
            return np.isin(self._article_ids, wanted).astype(np.float64)
        return np.array([document_matches_filter(filters, d) for d in self.documents], dtype=np.float64)


def _bm25s() -> Any:
    """bm25s, imported when first needed; it sets its logger to DEBUG on import, we put it back to WARNING."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _lucene_to_haystack_bm25plus(model: Any) -> None:
    """Rewrite Lucene BM25 scores (idf × tf-part) in place as Haystack's BM25+ (see the module docstring)."""
    scores = model.scores
    indptr = np.asarray(scores["indptr"])
    document_frequency = np.diff(indptr)
    n = scores["num_docs"]
    idf = np.log(1 + (n - document_frequency + 0.5) / (document_frequency + 0.5))
    term_of_entry = np.repeat(np.arange(len(document_frequency)), document_frequency)
    scores["data"] = ((1 + K1) * np.asarray(scores["data"], dtype=np.float64) + DELTA * idf[term_of_entry]).astype(
        np.float64
    )


@component
class KeywordRetriever:
    """Haystack retriever over a ``KeywordIndex``: same inputs and outputs as ``InMemoryBM25Retriever``."""

    def __init__(self, index: KeywordIndex, top_k: int = 10) -> None:
        self.index = index
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        return {"documents": self.index.search(query, self.top_k if top_k is None else top_k, filters)}
