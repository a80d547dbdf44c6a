"""The PostgreSQL + pgvector store on a real server (``scripts/dev-postgres.sh``), each test in its own schema.

The server comes from ``QABOT_PG_DSN`` when set (CI exports it), otherwise ``scripts/dev-postgres.sh start``
is run (and stopped again afterwards if it was not running). The tests are skipped, with the script's error as
the reason, only when PostgreSQL cannot be had at all.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import psycopg
import pytest
from haystack import Document, Pipeline
from haystack.document_stores.errors import DocumentStoreError
from haystack_integrations.components.retrievers.pgvector import PgvectorEmbeddingRetriever
from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore

from bot.articles import ArticleInfo, load_articles
from bot.config import PROJECT_ROOT, Settings
from bot.evaluation import evaluate, gold_retrieved, load_questions
from bot.indexing import build_indexing_pipeline
from bot.pipeline import QueryPipeline
from bot.stores.pgvector_store import (
    DSN_ENV,
    ListEmbeddingRetriever,
    PgvectorArticleStore,
    StoreUnavailableError,
    build_retrieval_pipeline,
    index_article,
)
from tests.conftest import QUESTIONS_FILE

SCRIPT = PROJECT_ROOT / "scripts" / "dev-postgres.sh"


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    if os.environ.get(DSN_ENV):
        yield os.environ[DSN_ENV]
        return
    was_running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
    started = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        reason = (started.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"PostgreSQL with pgvector cannot be had here ({SCRIPT.name} start: {reason})")
    yield started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    if not was_running:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)


def _new_schema(dsn: str) -> str:
    name = f"qabot_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {name}")
    return name


def _drop_schema(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def store(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[PgvectorArticleStore]:
    """An empty store in a schema of its own."""
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    schema = _new_schema(pg_dsn)
    opened = PgvectorArticleStore(schema=schema).open()
    yield opened
    opened.close()
    _drop_schema(pg_dsn, schema)


@pytest.fixture(scope="module")
def indexing(project_settings: Settings) -> Pipeline:
    return build_indexing_pipeline(project_settings, progress_bar=False)


@pytest.fixture(scope="module")
def article_store(pg_dsn: str, project_settings: Settings, indexing: Pipeline) -> Iterator[PgvectorArticleStore]:
    """The article set (data/articles) indexed once into a schema of its own."""
    previous = os.environ.get(DSN_ENV)
    os.environ[DSN_ENV] = pg_dsn  # module scope has no monkeypatch: restored below
    schema = _new_schema(pg_dsn)
    opened = PgvectorArticleStore(schema=schema).open()
    for article in load_articles(project_settings.resolve(project_settings.articles_dir)):
        index_article(opened, article, indexing)
    yield opened
    opened.close()
    _drop_schema(pg_dsn, schema)
    if previous is None:
        os.environ.pop(DSN_ENV, None)
    else:
        os.environ[DSN_ENV] = previous


def _answerable():
    return [question for question in load_questions(QUESTIONS_FILE) if question.golds]


# -- retrieval quality --------------------------------------------------------------------------------------


def test_recall_at_4_matches_faiss_and_bm25(article_store: PgvectorArticleStore, project_settings, qa_service):
    """pgvector (HNSW, cosine) + any-word full-text search, fused by RRF, against the FAISS + BM25 service."""
    pipeline, passages_from = build_retrieval_pipeline(project_settings, article_store)
    retrieval = QueryPipeline(pipeline, None, passages_from)  # the passages the reader would read
    questions = _answerable()
    hits = sum(gold_retrieved(retrieval.passages(q.question), q.golds) for q in questions)
    pg_recall = 100 * hits / len(questions)
    faiss_recall = evaluate(qa_service, questions).retrieval_recall
    print(
        f"retrieval recall@4 on {len(questions)} questions: pgvector+FTS {pg_recall:.1f}, FAISS+BM25 {faiss_recall:.1f}"
    )
    assert pg_recall >= faiss_recall - 100 / len(questions)  # at most one question of 51 fewer


def test_keyword_side_matches_any_word(article_store: PgvectorArticleStore):
    """The stock keyword query needs every word in one passage; ours needs any, so every question gets passages."""
    stock = PgvectorDocumentStore(
        connection_string=article_store.documents.connection_string,
        schema_name=article_store.schema,
        table_name=article_store.documents.table_name,
        embedding_dimension=article_store.documents.embedding_dimension,
        create_extension=False,
        keyword_index_name=article_store.documents.keyword_index_name,
    )
    questions = _answerable()
    ours_empty = sum(not article_store.documents._keyword_retrieval(q.question, top_k=4) for q in questions)
    stock_empty = sum(not stock._keyword_retrieval(q.question, top_k=4) for q in questions)
    stock.close()
    print(f"questions with no keyword passage: any-word {ours_empty}, stock {stock_empty} of {len(questions)}")
    assert ours_empty == 0
    assert stock_empty > len(questions) // 3


def test_embedding_retriever_takes_a_numpy_vector(article_store: PgvectorArticleStore, qa_service):
    vector = np.asarray(article_store.documents.filter_documents()[0].embedding, dtype=np.float32)
    found = ListEmbeddingRetriever(article_store.documents, top_k=2).run(query_embedding=vector)["documents"]
    assert len(found) == 2 and found[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError):  # why the wrapper exists
        PgvectorEmbeddingRetriever(document_store=article_store.documents).run(query_embedding=vector)


def _hnsw_scans(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE schemaname = %s AND indexrelname LIKE %s",
            (schema, "%hnsw%"),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_search_over_the_whole_store_goes_through_the_hnsw_index(article_store: PgvectorArticleStore, pg_dsn):
    """At this size PostgreSQL's own plan is a sequential scan computing every distance (what that costs at ~5,000
    chunks: ``benchmarks/pgvector_store.py``, "dense search µs planned" against "HNSW"); the store makes an
    unfiltered search use the HNSW index, and leaves the session's settings as they were."""
    documents = article_store.documents
    vector = np.asarray(documents.filter_documents()[0].embedding, dtype=np.float32)
    before = _hnsw_scans(pg_dsn, article_store.schema)
    documents._cursor.execute("SELECT pg_stat_force_next_flush()")  # the session reports its index use when idle
    found = ListEmbeddingRetriever(documents, top_k=4).run(query_embedding=vector)["documents"]
    assert len(found) == 4 and found[0].score == pytest.approx(1.0, abs=1e-4)
    deadline = time.monotonic() + 10
    while _hnsw_scans(pg_dsn, article_store.schema) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _hnsw_scans(pg_dsn, article_store.schema) > before
    assert documents._cursor.execute("SHOW enable_seqscan").fetchone()[0] == "on"


def test_retrieved_passages_carry_no_vectors(article_store: PgvectorArticleStore, project_settings):
    """Like the FAISS side's: nothing reads a passage's vector, and the pipeline copies every passage."""
    pipeline, passages_from = build_retrieval_pipeline(project_settings, article_store)
    retrieval = QueryPipeline(pipeline, None, passages_from)
    whole = retrieval.passages("Who backs Ahrar al-Sham?")
    scoped = retrieval.passages("Who backs Ahrar al-Sham?", {"field": "meta.article_id", "operator": "in",
                                                             "value": [whole[0].meta["article_id"]]})
    keyword = article_store.documents._keyword_retrieval("Ahrar al-Sham", top_k=2)
    for found in (whole, scoped, keyword):
        assert found and all(document.embedding is None and document.content for document in found)


def test_a_failed_search_leaves_the_connection_as_it_was(article_store: PgvectorArticleStore):
    """The index-only setting lives and dies with the search's own statement, also when PostgreSQL refuses it."""
    documents = article_store.documents
    vector = documents.filter_documents()[0].embedding
    with pytest.raises(DocumentStoreError, match="LIMIT must not be negative"):
        documents._embedding_retrieval(vector, top_k=-1)  # refused by the server, after the SET
    assert documents._cursor.execute("SHOW enable_seqscan").fetchone()[0] == "on"
    assert documents._connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert len(documents._embedding_retrieval(vector, top_k=2)) == 2


def test_a_reconnected_store_searches_with_our_ef_search(pg_dsn: str, monkeypatch: pytest.MonkeyPatch):
    """The store's ``hnsw.ef_search`` holds on every connection: when the server drops the store's connection,
    the next call reconnects, and searches run with our setting, not pgvector's default of 40."""
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    schema = _new_schema(pg_dsn)
    opened = PgvectorArticleStore(schema=schema, hnsw_ef_search=64).open()
    try:
        documents = opened.documents
        assert documents._cursor.execute("SHOW hnsw.ef_search").fetchone()[0] == "64"
        backend = documents._connection.info.backend_pid
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        assert documents.filter_documents() == []  # reconnects: the old connection is gone
        assert documents._connection.info.backend_pid != backend
        assert documents._cursor.execute("SHOW hnsw.ef_search").fetchone()[0] == "64"
    finally:
        opened.close()
        _drop_schema(pg_dsn, schema)


def test_keyword_hits_are_the_stored_chunks_without_fetching_their_vectors(article_store: PgvectorArticleStore):
    """Every field of the stored chunk but its vector, which the query does not even select."""
    documents = article_store.documents
    hits = documents._keyword_retrieval("Who backs Ahrar al-Sham?", top_k=4)
    columns = [column.name for column in documents._dict_cursor.description]  # what crossed the wire
    stored = {document.id: document for document in documents.filter_documents()}
    assert len(hits) == 4 and all(hit == replace(stored[hit.id], embedding=None, score=hit.score) for hit in hits)
    assert "embedding" not in columns and columns[-1] == "score"


# -- writes: per article, in one transaction, with a version ------------------------------------------------


def _chunks(article_id: str, texts: list[str], dim: int = 384) -> list[Document]:
    rng = np.random.default_rng(len(texts))
    return [
        Document(content=text, embedding=rng.standard_normal(dim).tolist(), meta={"article_id": article_id, "start": 0})
        for text in texts
    ]


def test_upsert_replaces_an_article_and_bumps_the_version(store: PgvectorArticleStore):
    info = ArticleInfo(article_id="bridge", title="Bridge reopens", source="Test Wire")
    assert store.version() == 0 and store.articles() == []
    assert store.upsert_article(info, _chunks("bridge", ["one.", "two.", "three."])) == 1
    assert store.upsert_article(replace(info, title="Bridge reopened"), _chunks("bridge", ["only one."])) == 2
    assert store.count_chunks("bridge") == 1 and store.count_chunks() == 1
    assert [a.title for a in store.articles()] == ["Bridge reopened"]


def test_a_failure_in_the_middle_of_an_add_leaves_the_previous_article(store: PgvectorArticleStore):
    info = ArticleInfo(article_id="bridge", title="Bridge reopens")
    store.upsert_article(info, _chunks("bridge", ["one.", "two."]))
    broken = [*_chunks("bridge", ["new one.", "new two."]), *_chunks("bridge", ["bad vector."], dim=3)]
    with pytest.raises(StoreUnavailableError, match="changed nothing: expected 384 dimensions, not 3"):
        store.upsert_article(replace(info, title="Half"), broken)  # the old chunks were deleted, two new written
    assert store.version() == 1
    assert sorted(d.content for d in store.documents.filter_documents()) == ["one.", "two."]
    assert [a.title for a in store.articles()] == ["Bridge reopens"]


def _stored_term_rows(store: PgvectorArticleStore) -> int:
    with psycopg.connect(os.environ[DSN_ENV]) as connection:
        return connection.execute(f"SELECT count(*) FROM {store.schema}.qabot_chunks_terms").fetchone()[0]


def test_delete_removes_an_article_atomically(store: PgvectorArticleStore):
    store.upsert_article(ArticleInfo("a", "A"), _chunks("a", ["a1.", "a2."]))
    store.upsert_article(ArticleInfo("b", "B"), _chunks("b", ["b1."]))
    assert store.delete_article("a") is True and store.version() == 3
    assert store.delete_article("a") is False and store.version() == 3
    assert [a.article_id for a in store.articles()] == ["b"] and store.count_chunks() == 1
    assert _stored_term_rows(store) == 1  # the chunks' stored search vectors went with them


def _refuse_deletes(dsn: str, schema: str, refuse: bool = True) -> None:
    """A trigger that makes PostgreSQL itself refuse to delete an article row (a real database error)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        if refuse:
            connection.execute(
                f"CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'deletes refused by the test'; END $$"
            )
            connection.execute(
                f"CREATE TRIGGER refuse BEFORE DELETE ON {schema}.qabot_articles "
                f"FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()"
            )
        else:
            connection.execute(f"DROP TRIGGER refuse ON {schema}.qabot_articles")
            connection.execute(f"DROP FUNCTION {schema}.refuse()")


def test_a_failed_delete_is_one_clear_error_and_changes_nothing(store: PgvectorArticleStore):
    store.upsert_article(ArticleInfo("a", "A"), _chunks("a", ["a1.", "a2."]))
    _refuse_deletes(os.environ[DSN_ENV], store.schema)
    with pytest.raises(StoreUnavailableError, match="removing 'a' failed and changed nothing: deletes refused"):
        store.delete_article("a")
    assert store.version() == 1 and store.count_chunks("a") == 2
    _refuse_deletes(os.environ[DSN_ENV], store.schema, refuse=False)
    assert store.delete_article("a") is True  # the connection is still usable after the failure


def test_keyword_search_follows_replaced_text(store: PgvectorArticleStore):
    def found(word: str) -> list[str]:
        return [d.content for d in store.documents._keyword_retrieval(word, top_k=4)]

    store.upsert_article(ArticleInfo("a", "A"), _chunks("a", ["The harbour bridge reopened.", "Trams run again."]))
    assert found("bridges") == ["The harbour bridge reopened."]  # stemmed like the passages
    store.upsert_article(ArticleInfo("a", "A"), _chunks("a", ["The ferry now sails hourly."]))
    assert found("bridge") == [] and found("ferries sail") == ["The ferry now sails hourly."]
    assert _stored_term_rows(store) == store.count_chunks() == 1


def test_a_second_worker_sees_the_change_through_the_version(store: PgvectorArticleStore):
    reader = PgvectorArticleStore(schema=store.schema, create=False).open()  # e.g. a worker on a read replica
    before = reader.version()
    store.upsert_article(ArticleInfo("a", "A"), _chunks("a", ["a1."]))
    assert reader.version() == before + 1 and [a.article_id for a in reader.articles()] == ["a"]
    reader.close()


def test_opening_without_create_on_an_empty_database_is_a_clear_error(pg_dsn: str, monkeypatch):
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    schema = _new_schema(pg_dsn)
    try:
        with pytest.raises(StoreUnavailableError, match="cannot be used"):
            PgvectorArticleStore(schema=schema, create=False).open()
    finally:
        _drop_schema(pg_dsn, schema)


# -- the connection string ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        (None, f"{DSN_ENV} is not set"),
        ("no such thing", "is not a PostgreSQL connection string"),
        ("postgresql://qabot:wrong-password-123@127.0.0.1:{port}/qabot", "password authentication failed"),
        ("postgresql://qabot:wrong-password-123@127.0.0.1:1/qabot", "Connection refused"),
    ],
)
def test_a_bad_dsn_is_one_clear_error(pg_dsn: str, monkeypatch: pytest.MonkeyPatch, dsn: str | None, message: str):
    if dsn is None:
        monkeypatch.delenv(DSN_ENV, raising=False)
    else:
        monkeypatch.setenv(DSN_ENV, dsn.replace("{port}", str(psycopg.conninfo.conninfo_to_dict(pg_dsn)["port"])))
    with pytest.raises(StoreUnavailableError) as raised:
        PgvectorArticleStore(schema="public").open()
    text = str(raised.value)
    assert message in text and "\n" not in text
    assert "wrong-password-123" not in text and "no such thing" not in text
