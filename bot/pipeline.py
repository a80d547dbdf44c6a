"""The query pipeline, assembled in one place so the whole flow reads in one screen.

    question ─► text_embedder ─► dense_retriever (FAISS | pgvector) ──────────┐
            └─────────────────► bm25_retriever (bm25s | PostgreSQL full text) ┴► joiner (reciprocal rank fusion)
                  ─► agreement (drop low dense-only passages, see bot.passage_filter) ─► reader

The retrievers come from the store (``bot.stores``: a FAISS build or the PostgreSQL store); the graph is
wired here, in ``assemble_retrieval``, for both.

BM25 is there because names such as "Ahrar al-Sham" or "Jaysh al Fateh" are lexical: a small sentence
embedder knows little about them, an exact-term match knows exactly.

Retrieval is a Haystack ``Pipeline``; the reader is called after it by ``QueryPipeline`` rather than wired
into it, because a Haystack pipeline runs one question at a time while the reader can read the questions
of several chats in one batch (``OnnxExtractiveReader.run_batch``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haystack import Document, ExtractedAnswer, Pipeline
from haystack.components.joiners import DocumentJoiner

from bot.config import Settings
from bot.models import embedder_model, embedder_onnx_files, onnx_file, reader_calibration, reader_model
from bot.onnx_components import OnnxDocumentEmbedder, OnnxExtractiveReader, OnnxTextEmbedder
from bot.passage_filter import RetrievalAgreementFilter

# Answers per question the reader hands back before our own de-duplication and alternatives.
READER_TOP_K = 8

# The PyTorch components are imported only when configured: transformers + sentence-transformers cost
# seconds of start-up and hundreds of MB that the default ONNX path never pays.


def build_text_embedder(settings: Settings) -> Any:
    """Question embedder: int8 ONNX MiniLM, or sentence-transformers on PyTorch."""
    if settings.embedder.backend == "onnx":
        return OnnxTextEmbedder(*embedder_onnx_files(settings))
    from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

    return SentenceTransformersTextEmbedder(
        model=embedder_model(settings), normalize_embeddings=True, progress_bar=False
    )


def build_document_embedder(settings: Settings, progress_bar: bool = True) -> Any:
    """Chunk embedder for indexing; always the same model and backend as the question embedder."""
    if settings.embedder.backend == "onnx":
        return OnnxDocumentEmbedder(
            *embedder_onnx_files(settings), batch_size=settings.embedder.batch_size, progress_bar=progress_bar
        )
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
    )

    return SentenceTransformersDocumentEmbedder(
        model=embedder_model(settings),
        normalize_embeddings=True,
        batch_size=settings.embedder.batch_size,
        progress_bar=progress_bar,
    )


def build_reader(settings: Settings) -> Any:
    """The reader as configured: the int8 ONNX fast path or the plain PyTorch model (same scoring)."""
    reader = settings.reader
    calibration_factor, calibration_bias = reader_calibration(settings)
    if reader.backend == "onnx":
        return OnnxExtractiveReader(
            model_dir=Path(reader_model(settings)),
            onnx_path=onnx_file(settings),
            top_k=READER_TOP_K,
            max_seq_length=reader.max_seq_length,
            stride=reader.stride,
            calibration_factor=calibration_factor,
            calibration_bias=calibration_bias,
            null_relative_scores=reader.null_relative_scores,
            answers_per_window=READER_TOP_K,
        )
    from bot.reader import QabotReader

    return QabotReader(
        model=reader_model(settings),
        null_relative_scores=reader.null_relative_scores,
        calibration_bias=calibration_bias,
        top_k=READER_TOP_K,
        max_seq_length=reader.max_seq_length,
        stride=reader.stride,
        calibration_factor=calibration_factor,
        no_answer=False,
        answers_per_seq=READER_TOP_K,
    )


def article_filter(articles: frozenset[str]) -> dict[str, Any]:
    """A Haystack metadata filter that keeps the chunks of these articles only (a chat's scope)."""
    return {"field": "meta.article_id", "operator": "in", "value": sorted(articles)}


class QueryPipeline:
    """Retrieval pipeline + reader: question(s) in, (reader answers, passages read) out."""

    def __init__(self, retrieval: Pipeline, reader: Any, passages_from: str = "joiner") -> None:
        self.retrieval = retrieval
        self.reader = reader
        self.passages_from = passages_from  # the retrieval component whose documents the reader reads

    def warm_up(self) -> None:
        self.retrieval.warm_up()
        self.reader.warm_up()

    def question_tokens(self, question: str) -> int:
        """The question's length in the reader's own tokens (``bot.question_rules`` limits it)."""
        return self.reader.question_tokens(question)

    def passages(self, question: str, filters: dict[str, Any] | None = None) -> list[Document]:
        """The passages the reader reads; ``filters`` (Haystack syntax, e.g. on ``meta.article_id``) go to
        both retrievers."""
        inputs: dict[str, dict[str, Any]] = {"text_embedder": {"text": question}}
        if filters:
            inputs["dense_retriever"] = {"filters": filters}
        if "bm25_retriever" in self.retrieval.graph.nodes:
            inputs["bm25_retriever"] = {"query": question, "filters": filters}
        return self.retrieval.run(inputs)[self.passages_from]["documents"]

    def with_index(self, settings: Settings, index: Any) -> QueryPipeline:
        """The same models over another index (a ``bot.stores.ArticleIndex``): new retrievers, the same (warm)
        embedder and reader.

        The question embedder moves from this pipeline to the new one (a Haystack component belongs to one
        pipeline), so this pipeline must not be used afterwards.
        """
        text_embedder = self.retrieval.remove_component("text_embedder")
        retrieval, passages_from = index.retrieval_pipeline(settings, text_embedder)
        return QueryPipeline(retrieval, self.reader, passages_from)

    def run(
        self,
        questions: list[str],
        scopes: list[frozenset[str] | None] | None = None,
        retrieval_queries: list[str] | None = None,
    ) -> list[tuple[list[ExtractedAnswer], list[Document]]]:
        """Answers and passages per question; one reader batch when the reader supports it.

        ``scopes`` (one per question, None = all articles) limits retrieval to those article ids;
        ``retrieval_queries`` (one per question) is what retrieval searches with when it differs from what the
        reader reads: a follow-up's question expanded with the previous turn (see bot.conversation).
        """
        scopes = scopes if scopes is not None else [None] * len(questions)
        queries = retrieval_queries or questions
        passages = [
            self.passages(query, article_filter(scope) if scope is not None else None)
            for query, scope in zip(queries, scopes, strict=True)
        ]
        if len(questions) > 1 and hasattr(self.reader, "run_batch"):
            answers = self.reader.run_batch(questions, passages)
        else:
            pairs = zip(questions, passages, strict=True)
            answers = [self.reader.run(query=q, documents=p)["answers"] for q, p in pairs]
        return list(zip(answers, passages, strict=True))


def assemble_retrieval(
    settings: Settings, text_embedder: Any, dense_retriever: Any, keyword_retriever: Any | None
) -> tuple[Pipeline, str]:
    """Embedder → dense retriever (+ keyword retriever) → RRF joiner (→ agreement filter), for any store.

    The one place the retrieval graph is wired: the FAISS + bm25s index and the PostgreSQL store
    (``bot.stores.pgvector_store``) hand in their own retrievers. Returns the pipeline and the name of the
    component whose passages the reader reads.
    """
    retrieval = settings.retrieval
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", text_embedder)
    pipeline.add_component("dense_retriever", dense_retriever)
    pipeline.add_component(
        "joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=retrieval.top_k, sort_by_score=True)
    )
    pipeline.connect("text_embedder.embedding", "dense_retriever.query_embedding")
    pipeline.connect("dense_retriever.documents", "joiner.documents")
    passages_from = "joiner"
    if keyword_retriever is not None:
        pipeline.add_component("bm25_retriever", keyword_retriever)
        pipeline.connect("bm25_retriever.documents", "joiner.documents")
        if retrieval.dense_only_top is not None:
            pipeline.add_component("agreement", RetrievalAgreementFilter(dense_only_top=retrieval.dense_only_top))
            pipeline.connect("joiner.documents", "agreement.documents")
            pipeline.connect("dense_retriever.documents", "agreement.dense_documents")
            pipeline.connect("bm25_retriever.documents", "agreement.lexical_documents")
            passages_from = "agreement"
    return pipeline, passages_from
