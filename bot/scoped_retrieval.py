"""Dense retrieval over a FAISS build that stays exact for scoped questions (a chat's own articles, ``/use N``).

Why not just pass the filter to ``FAISSEmbeddingRetriever``: the FAISS store filters *after* its search (it
fetches ``top_k * 10`` nearest chunks, then drops those outside the filter), so in a large corpus a chat's small
article is often not among them and the dense side returns nothing of it. A scope is small, so its chunks are
scored exactly against the build's stored vectors (``embeddings.npy``, in the store's document order) instead.
Unscoped questions go to FAISS as before.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from haystack import Document, component
from haystack.utils.filters import document_matches_filter


@component
class ScopedDenseRetriever:
    """``FAISSEmbeddingRetriever``'s inputs and outputs; a filtered query is scored exactly over matching chunks."""

    def __init__(self, retriever: Any, documents: list[Document], vectors: np.ndarray) -> None:
        if len(documents) != len(vectors):
            raise ValueError(f"{len(documents)} documents but {len(vectors)} vectors")
        self.retriever = retriever  # FAISSEmbeddingRetriever over the same store
        self.documents = documents
        self.vectors = vectors  # float32, one row per document (may be memory-mapped)
        self.rows_by_article: dict[str, list[int]] = {}
        for row, document in enumerate(documents):
            self.rows_by_article.setdefault(str(document.meta.get("article_id", "")), []).append(row)

    @component.output_types(documents=list[Document])
    def run(
        self, query_embedding: Any, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        if not filters:
            return self.retriever.run(query_embedding=query_embedding, top_k=top_k)
        k = self.retriever.top_k if top_k is None else top_k
        rows = self._rows(filters)
        if not rows or k <= 0:
            return {"documents": []}
        query = np.asarray(query_embedding, dtype=np.float32).reshape(-1)
        # Squared L2 distance and 1 / (1 + d) as score: what the FAISS store reports for the same chunk.
        distances = ((np.asarray(self.vectors[rows], dtype=np.float32) - query) ** 2).sum(axis=1)
        best = np.argsort(distances, kind="stable")[:k]
        found = [replace(self.documents[rows[i]], score=float(1 / (1 + distances[i]))) for i in best]
        return {"documents": found}

    def _rows(self, filters: dict[str, Any]) -> list[int]:
        """Rows matching ``filters``; the article-id filter of a chat's scope (``bot.pipeline.article_filter``)
        is a dictionary look-up, any other filter is checked chunk by chunk."""
        if filters.get("field") == "meta.article_id" and filters.get("operator") in ("in", "=="):
            value = filters["value"]
            ids = [value] if filters["operator"] == "==" else list(value)
            return sorted(row for article_id in ids for row in self.rows_by_article.get(article_id, []))
        return [row for row, document in enumerate(self.documents) if document_matches_filter(filters, document)]
