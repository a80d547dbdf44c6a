"""pgvector against FAISS at two sizes: index throughput, ms per question, retrieval latency and recall@4.

    export "$(scripts/dev-postgres.sh start | tail -n 1)"
    .venv/bin/python benchmarks/pgvector_store.py                        # the article alone, then ~5,000 chunks
    .venv/bin/python benchmarks/pgvector_store.py --distractor-chunks 20000 --no-faiss

The bigger size adds whole SQuAD v1.1 training articles (read from ../shared, never copied into the repository)
as distractors until about N extra chunks, so retrieval must find the Aleppo passages among many others.
Per size, in a schema of its own (dropped afterwards):

- embedding throughput (chunks/s through qabot's indexing pipeline) and write throughput (chunks/s of
  ``upsert_article``, one transaction per article: HNSW and full-text index updates included);
- retrieval latency per question (question embedding + pgvector HNSW + any-word full-text search + RRF), p50/p95
  over the 68 article questions after one warm-up;
- retrieval recall@4 on the 51 answerable questions (``bot.evaluation.gold_retrieved``);
- the store's own searches, µs per question (p50; the question vectors computed beforehand, the searches
  interleaved question by question): the dense search as qabot runs it (over the whole store: through the HNSW
  index), the same search as PostgreSQL plans it on its own (the stock ``PgvectorDocumentStore`` method, which
  ``AnyWordPgvectorDocumentStore._embedding_retrieval`` overrides), the any-word keyword search on the stored
  tsvectors, and the same query computing each row's tsvector at every question (as before they were stored);
- then, unless ``--no-faiss``, both backends the way a user runs them, over the same articles written to a
  temporary folder: ``qabot index`` (``bot.stores.build_index``: chunking, embedding and writing; chunks/s),
  then a ``QAService`` with the answer cache off answering the 68 questions one at a time (ms per question,
  p50/p95, reader included, after one warm-up), and its retrieval recall@4 (``bot.evaluation.evaluate``).

Timings depend on load: run it on an idle machine and say so with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore
from haystack_integrations.document_stores.pgvector.converters import _from_pg_to_haystack_documents
from psycopg.sql import SQL, Identifier
from psycopg.sql import Literal as SQLLiteral
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `training` is not installed: the checkout's own

import bot  # noqa: F401  (offline environment before any model library loads)
from bot import stores
from bot.articles import Article, ArticleInfo, clean_body, load_articles
from bot.chunking import SentenceChunker, article_document
from bot.config import PROJECT_ROOT, Settings, load_settings, with_overrides
from bot.evaluation import evaluate, gold_retrieved, load_questions
from bot.indexing import build_indexing_pipeline
from bot.pipeline import QueryPipeline
from bot.stores.pgvector_store import (
    DSN_ENV,
    PASSAGE_COLUMNS,
    PgvectorArticleStore,
    build_retrieval_pipeline,
    check_dsn,
)
from training.squad_data import DEFAULT_SQUAD_PATH
from training.squad_data import load_articles as load_squad

QUESTIONS = PROJECT_ROOT / "tests" / "data" / "aleppo_questions.json"


def distractors(settings: Settings, chunks_wanted: int, squad: Path) -> list[Article]:
    """Whole SQuAD training articles, in file order, until their chunks reach ``chunks_wanted``."""
    if chunks_wanted <= 0:
        return []
    data = load_squad(squad)
    chunker = SentenceChunker(settings.chunking)
    articles, total = [], 0
    for item in data:
        slug = "squad-" + re.sub(r"[^a-z0-9]+", "-", item["title"].lower()).strip("-")
        text = clean_body("\n".join(paragraph["context"] for paragraph in item["paragraphs"]))
        article = Article(ArticleInfo(article_id=slug, title=item["title"].replace("_", " ")), text)
        articles.append(article)
        total += len(chunker.run([article_document(article)])["documents"])
        if total >= chunks_wanted:
            break
    return articles


def measure_pgvector(settings: Settings, dsn: str, articles: list[Article], questions) -> dict:
    schema = f"qabot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    # hnsw.ef_search as qabot opens the store (bot.stores.pgvector_indexing.open_store), not pgvector's default
    store = PgvectorArticleStore(schema=schema, hnsw_ef_search=settings.index.hnsw_ef_search).open()
    try:
        indexing = build_indexing_pipeline(settings, progress_bar=False)
        started = time.perf_counter()
        chunked = [
            (article, indexing.run({"chunker": {"documents": [article_document(article)]}})["embedder"]["documents"])
            for article in articles
        ]
        embed_s = time.perf_counter() - started
        chunks = sum(len(documents) for _, documents in chunked)
        started = time.perf_counter()
        for article, documents in chunked:
            store.upsert_article(article.info, documents)
        write_s = time.perf_counter() - started

        pipeline, passages_from = build_retrieval_pipeline(settings, store)
        retrieval = QueryPipeline(pipeline, None, passages_from)  # the passages the reader would read
        retrieval.passages("warm-up question about the article?")
        latencies, hits, answerable = [], 0, 0
        for question in questions:
            started = time.perf_counter()
            passages = retrieval.passages(question.question)
            latencies.append((time.perf_counter() - started) * 1000)
            if question.golds:
                answerable += 1
                hits += gold_retrieved(passages, question.golds)
        return {
            "chunks": chunks,
            "embed chunks/s": chunks / embed_s,
            "write chunks/s": chunks / write_s,
            "retrieval p50 ms": percentile(latencies, 50),
            "retrieval p95 ms": percentile(latencies, 95),
            "recall@4 pgvector+FTS": 100 * hits / answerable,
        } | search_latencies(settings, store, pipeline.get_component("text_embedder"), questions)
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


# The any-word keyword query as it was before the passages' tsvectors were stored (commit a0f40e9), with the
# same columns as the store's: ``to_tsvector`` computed for every matching row at every question.
_PER_ROW_TSVECTOR_QUERY = """
SELECT {columns}, ts_rank(to_tsvector({language}, content), words.query) AS score
FROM {chunks}, (SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS query
                  FROM unnest(to_tsvector({language}, %s))) AS words
WHERE to_tsvector({language}, content) @@ words.query ORDER BY score DESC LIMIT {top_k}
"""


def search_latencies(settings: Settings, store: PgvectorArticleStore, embedder, questions) -> dict[str, float]:
    """The store's searches alone, µs per question (p50): dense through HNSW and as planned, keyword with stored
    tsvectors and computed per row."""
    documents = store.documents
    dense_k, keyword_k = settings.retrieval.dense_top_k, settings.retrieval.bm25_top_k
    searches = {
        "dense search µs HNSW": lambda question, vector: documents._embedding_retrieval(vector, top_k=dense_k),
        "dense search µs planned": lambda question, vector: PgvectorDocumentStore._embedding_retrieval(
            documents, vector, top_k=dense_k
        ),
    }
    if keyword_k > 0:
        searches["keyword search µs"] = lambda question, vector: documents._keyword_retrieval(question, top_k=keyword_k)
        per_row = SQL(_PER_ROW_TSVECTOR_QUERY).format(
            columns=SQL(", ").join(map(Identifier, PASSAGE_COLUMNS)),
            chunks=Identifier(documents.schema_name, documents.table_name),
            language=SQLLiteral(documents.language),
            top_k=SQLLiteral(keyword_k),
        )
        searches["keyword µs tsvector per row"] = lambda question, vector: _from_pg_to_haystack_documents(
            documents._dict_cursor.execute(per_row, (question,)).fetchall()
        )
    vectors = [[float(x) for x in embedder.run(text=question.question)["embedding"]] for question in questions]
    times: dict[str, list[float]] = {name: [] for name in searches}
    for search in searches.values():
        search(questions[0].question, vectors[0])  # warm-up
    for question, vector in zip(questions, vectors, strict=True):
        for name, search in searches.items():
            started = time.perf_counter()
            search(question.question, vector)
            times[name].append((time.perf_counter() - started) * 1e6)
    return {name: percentile(values, 50) for name, values in times.items()}


def measure_backends(settings: Settings, dsn: str, articles: list[Article], questions) -> dict:
    """FAISS and pgvector as ``qabot index`` and ``QAService`` use them: index chunks/s, ms per question, recall@4."""
    from bot.answering import QAService

    row: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="qabot-bench-") as folder:
        articles_dir = Path(folder) / "articles"
        articles_dir.mkdir()
        for article in articles:
            header = f"---\ntitle: {article.info.title}\n---\n"
            (articles_dir / f"{article.info.article_id}.txt").write_text(header + article.text, encoding="utf-8")
        for backend in ("faiss", "pgvector"):
            schema = f"qabot_bench_{uuid.uuid4().hex[:8]}"
            variant = with_overrides(
                settings,
                {
                    "articles_dir": articles_dir,
                    "index_dir": Path(folder) / f"index-{backend}",
                    "answers.cache_size": 0,  # every question answered
                    "document_store.backend": backend,
                    "document_store.pg_schema": schema,
                },
            )
            try:
                started = time.perf_counter()
                built = stores.build_index(variant, progress_bar=False)
                row[f"{backend} index chunks/s"] = built.documents / (time.perf_counter() - started)
                service = QAService.from_settings(variant)
                service.answer("warm-up question about the article?")
                latencies = []
                for question in questions:
                    started = time.perf_counter()
                    service.answer(question.question)
                    latencies.append((time.perf_counter() - started) * 1000)
                row[f"{backend} ms/question p50"] = percentile(latencies, 50)
                row[f"{backend} ms/question p95"] = percentile(latencies, 95)
                row[f"{backend} recall@4"] = evaluate(service, [q for q in questions if q.golds]).retrieval_recall
            finally:
                if backend == "pgvector":
                    with psycopg.connect(dsn, autocommit=True) as connection:
                        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--distractor-chunks", type=int, default=5000, help="extra chunks at the bigger size")
    parser.add_argument(
        "--no-faiss", action="store_true", help="skip qabot index + QAService on both backends"
    )
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD_PATH, help="SQuAD v1.1 train (.json.gz)")
    args = parser.parse_args()
    if args.distractor_chunks > 0 and not args.squad.exists():
        parser.error(f"no SQuAD file at {args.squad}; pass --squad PATH/train-v1.1.json.gz")
    dsn = check_dsn(os.environ)
    settings = load_settings()
    questions = load_questions(QUESTIONS)
    own = load_articles(settings.resolve(settings.articles_dir))
    rows = []
    for extra in (0, args.distractor_chunks):
        articles = own + distractors(settings, extra, args.squad)
        row = measure_pgvector(settings, dsn, articles, questions)
        if not args.no_faiss:
            row |= measure_backends(settings, dsn, articles, questions)
        rows.append(row)
        print(json.dumps({key: round(value, 1) for key, value in row.items()}, ensure_ascii=False), flush=True)
    print(f"\n{'metric':<28}" + "".join(f"{row['chunks']:>12,} chunks" for row in rows))
    for key in rows[0]:
        if key != "chunks":
            print(f"{key:<28}" + "".join(f"{row[key]:>19.1f}" for row in rows))
    print(f"\nPostgreSQL from {DSN_ENV}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; timings depend on load")


if __name__ == "__main__":
    main()
