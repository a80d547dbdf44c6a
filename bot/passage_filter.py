"""Skip the reader on fused passages that retrieval itself rules out: low dense hits that BM25 does not back.

Reciprocal rank fusion fills the reader's passages from both lists, so a question whose words match two
chunks still gets two more that only the sentence embedder liked, further down its list; names such as
"Ahrar al-Sham" are lexical, so passages that only BM25 found are kept. Reading a passage costs the same
whether or not it can hold the answer: the reader is nearly all of an answer's time.

Off by default (``retrieval.dense_only_top: null``). With 1 the reader read 3.46 instead of 4 passages per
question, about 10 % faster, with retrieval recall still 100 %, but our question set scored one exact match
and one no-answer decision lower (``benchmarks/sweep_retrieval.py --grid skip``), so the default reads all.
"""

from __future__ import annotations

from haystack import Document, component


@component
class RetrievalAgreementFilter:
    """Keep a fused passage if BM25 found it too, or if it is among FAISS's ``dense_only_top`` best hits."""

    def __init__(self, dense_only_top: int = 1) -> None:
        self.dense_only_top = dense_only_top

    @component.output_types(documents=list[Document])
    def run(
        self, documents: list[Document], dense_documents: list[Document], lexical_documents: list[Document]
    ) -> dict[str, list[Document]]:
        lexical = {document.id for document in lexical_documents}
        dense_rank = {document.id: rank for rank, document in enumerate(dense_documents)}
        return {"documents": [d for d in documents if d.id in lexical or self._high_dense_hit(dense_rank.get(d.id))]}

    def _high_dense_hit(self, rank: int | None) -> bool:
        return rank is not None and rank < self.dense_only_top
