"""PostgreSQL + pgvector as a shared article store (``document_store.backend: pgvector``; see ``bot.stores``).

One embedded FAISS index per process is the right default; a bot with many workers needs one store that all
of them read. This module keeps that store on PostgreSQL through ``pgvector-haystack``:

- chunk rows: the Haystack documents of every article (content, MiniLM embedding, meta with ``article_id``),
  an HNSW index (cosine) for the dense side and a GIN full-text index for the keyword side;
- ``qabot_articles``: one row per article (what ``/sources`` lists, and the article's fingerprint, so that
  ``qabot index`` re-embeds only changed articles), with an index on the chunks' article id;
- ``qabot_store_version``: one row whose number goes up with every change, so running workers can notice a
  change and drop their answer caches.

Adding, replacing or removing an article is one transaction (chunks, article row, version), so a crash in the
middle leaves the previous state. The connection string comes only from ``QABOT_PG_DSN``.

Two fixes over the stock ``pgvector-haystack`` components (8.x):
- its keyword retrieval uses ``plainto_tsquery``, which requires every word of the question in a passage: on
  the article it returned nothing for 35 of 51 questions (tests/test_pgvector_store.py
  ``test_keyword_side_matches_any_word`` prints it). ``AnyWordPgvectorDocumentStore`` matches passages with any
  of the question's words and ranks them by term frequency (``ts_rank``), as BM25 does;
- its embedding retriever fails on a numpy query vector (``if not query_embedding``), which is what our ONNX
  text embedder hands on; ``ListEmbeddingRetriever`` converts it to a list first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from haystack import Document, Pipeline, component
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils.auth import Secret
from haystack_integrations.components.retrievers.pgvector import PgvectorEmbeddingRetriever, PgvectorKeywordRetriever
from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore
from haystack_integrations.document_stores.pgvector.converters import _from_pg_to_haystack_documents
from haystack_integrations.document_stores.pgvector.filters import _convert_filters_to_where_clause_and_params
from psycopg import Connection, Error, OperationalError
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Composed, Identifier
from psycopg.sql import Literal as SQLLiteral

from bot.articles import Article, ArticleInfo
from bot.config import Settings
from bot.errors import QabotError

log = logging.getLogger(__name__)

DSN_ENV = "QABOT_PG_DSN"
CHUNKS_TABLE = "qabot_chunks"
ARTICLES_TABLE = "qabot_articles"
VERSION_TABLE = "qabot_store_version"
EMBEDDING_DIM = 384  # all-MiniLM-L6-v2, the only embedder qabot ships
CONNECT_TIMEOUT_S = 10
_SCHEMA_LOCK = 0x71AB07  # advisory lock: two workers starting together must not race on CREATE TABLE

# Any word of the question (its lexemes: stop words dropped, stemmed as the passages are), ranked by ts_rank
# (how often the words occur, like BM25's term frequency). ts_rank_cd, the stock choice, ranks by cover density,
# which suits all-words queries; with any-word matching it put the gold passage outside the fused top 4 for
# 2 of the 51 article questions, ts_rank for none (test_recall_at_4_matches_faiss_and_bm25 in
# tests/test_pgvector_store.py prints the recall: 100.0 as it is, 96.1 with ts_rank_cd here, which fails it).
# The passages' tsvectors are stored (``{terms}``, kept by a trigger) instead of computed per query as the stock
# store does: an any-word query matches and ranks most rows, and recomputing to_tsvector for each of them took
# 21.5 ms per question at 5,097 chunks against 2.9 ms with the stored ones, which are the same to_tsvector of the
# same text (``benchmarks/pgvector_store.py --no-faiss`` on 2 busy cores: "keyword µs tsvector per row" against
# "keyword search µs").
_ANY_WORD_QUERY = """
SELECT {columns}, ts_rank(terms.tsv, words.query) AS score
FROM {schema}.{table} JOIN {terms} AS terms USING (id),
     (SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS query
        FROM unnest(to_tsvector({language}, %s))) AS words
WHERE terms.tsv @@ words.query
"""

# What a keyword hit is read from: every column of the stock chunk table (pgvector-haystack's
# CREATE_TABLE_STATEMENT) but ``embedding``. Nothing downstream reads a passage's vector (see
# ``_without_vectors``), so a keyword hit does not fetch its 384 floats at all.
PASSAGE_COLUMNS = ("id", "content", "blob_data", "blob_meta", "blob_mime_type", "meta")

# Put before the stock unfiltered vector search (``AnyWordPgvectorDocumentStore._embedding_retrieval``): the
# search's vector is an SQL literal and it has no parameters, so psycopg sends the two statements as one simple
# Query message, which PostgreSQL runs on the store's autocommit connection as one implicit transaction. The
# setting holds for that search alone and ends with it, failed or not: no extra round trip (a separate SET and
# RESET were two), and nothing can leave it set on the connection for the next query (a filtered search, the
# keyword search, the version check). A query with parameters would be refused ("cannot insert multiple
# commands into a prepared statement"), never run without the setting.
_INDEX_ONLY = SQL("SET LOCAL enable_seqscan = off; ")

# The side table of stored tsvectors: a row per chunk, written by a trigger on the chunk table (which is the
# Haystack store's own: a column added to it would come back in every ``SELECT *`` as a meta field), removed
# with the chunk by the foreign key.
_TERMS_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS {terms} (
         id varchar(128) PRIMARY KEY REFERENCES {chunks} (id) ON DELETE CASCADE, tsv tsvector NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS {terms_index} ON {terms} USING GIN (tsv)",
    """CREATE OR REPLACE FUNCTION {terms_function}() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO {terms} (id, tsv) VALUES (NEW.id, to_tsvector({language}, coalesce(NEW.content, '')))
         ON CONFLICT (id) DO UPDATE SET tsv = EXCLUDED.tsv;
         RETURN NULL;
       END $$""",
    """CREATE OR REPLACE TRIGGER {terms_trigger} AFTER INSERT OR UPDATE OF content ON {chunks}
       FOR EACH ROW EXECUTE FUNCTION {terms_function}()""",
    """INSERT INTO {terms} (id, tsv) SELECT id, to_tsvector({language}, coalesce(content, '')) FROM {chunks}
       ON CONFLICT (id) DO NOTHING""",
]


class StoreUnavailableError(QabotError):
    """PostgreSQL cannot be reached or used as configured (no DSN, bad DSN, server down, no pgvector)."""


def check_dsn(environ: Mapping[str, str]) -> str:
    """The DSN from ``QABOT_PG_DSN``, checked for form; errors never repeat it (it holds a password)."""
    dsn = environ.get(DSN_ENV, "").strip()
    if not dsn:
        raise StoreUnavailableError(
            f"{DSN_ENV} is not set: start PostgreSQL with `scripts/dev-postgres.sh start` and export its last line"
        )
    try:
        conninfo_to_dict(dsn)
    except Error:
        raise StoreUnavailableError(
            f"{DSN_ENV} is not a PostgreSQL connection string (postgresql://user:password@host:port/database)"
        ) from None
    return dsn


def connect(environ: Mapping[str, str], autocommit: bool = False, options: str | None = None) -> Connection:
    """A connection to the server ``QABOT_PG_DSN`` names, with a timeout; failures are one clear error.
    ``options``: server settings for the whole session (libpq's ``options``, e.g. ``-c hnsw.ef_search=64``)."""
    dsn = check_dsn(environ)
    extra = {"options": options} if options else {}
    try:
        return Connection.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=autocommit, **extra)
    except OperationalError as error:
        raise StoreUnavailableError(f"cannot connect to PostgreSQL ({_where(dsn)}): {reason(error)}") from None


class AnyWordPgvectorDocumentStore(PgvectorDocumentStore):
    """``PgvectorDocumentStore`` whose keyword retrieval matches any word of the query, and whose connection
    errors are one clear ``StoreUnavailableError`` (with a connect timeout instead of a hang)."""

    def _create_connection(self) -> Connection:
        """Every connection, a reconnection too, starts with our ``hnsw.ef_search``: the stock store sets it once,
        on the first connection, so after a dropped connection searches ran with pgvector's default (40)."""
        options = f"-c hnsw.ef_search={int(self.hnsw_ef_search)}" if self.hnsw_ef_search else None
        return connect({DSN_ENV: self.connection_string.resolve_value() or ""}, options=options)

    def _handle_hnsw(self) -> None:
        """Create the HNSW index only when it is missing (the stock method warns on every open otherwise).

        ``hnsw.ef_search`` is not set here, as the stock method does: every connection starts with it
        (``_create_connection``).
        """
        _, index_exists, _, _ = self._build_hnsw_queries()
        assert self._cursor is not None
        exists = self._cursor.execute(index_exists, (self.schema_name, self.table_name, self.hnsw_index_name))
        if exists.fetchone() is None:
            super()._handle_hnsw()

    def _embedding_retrieval(
        self,
        query_embedding: list[float],
        *,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        vector_function: Any = None,
    ) -> list[Document]:
        """The stock search, through the HNSW index whenever the search is over the whole store.

        Why: PostgreSQL prices an HNSW scan by ``hnsw.ef_search``; with ours (64) the index looks dearer than a
        sequential scan + sort up to several thousand chunks, and that plan computes every distance: 21.1 ms
        against 2.4 ms per search at 5,097 chunks (``benchmarks/pgvector_store.py --no-faiss`` on 2 busy cores:
        "dense search µs planned" against "HNSW"). The setting is ``_INDEX_ONLY``, sent with the search itself.
        A search with filters (a chat's own articles) keeps the planner's choice: HNSW first and the filter
        after could return fewer than ``top_k`` passages of the scope, where a sequential scan is exact.
        """
        if filters:
            return _without_vectors(
                super()._embedding_retrieval(
                    query_embedding, filters=filters, top_k=top_k, vector_function=vector_function
                )
            )
        search, params = self._check_and_build_embedding_retrieval_query(
            query_embedding=query_embedding, vector_function=vector_function, top_k=top_k
        )
        self._ensure_db_setup()
        assert self._dict_cursor is not None
        found = self._execute_sql(
            cursor=self._dict_cursor,
            sql_query=_INDEX_ONLY + search,
            params=params,
            error_msg="Could not retrieve documents from PgvectorDocumentStore.",
        )
        found.nextset()  # past the SET's empty result to the search's rows
        return _without_vectors(_from_pg_to_haystack_documents(found.fetchall()))

    def _build_keyword_retrieval_query(
        self, query: str, top_k: int, filters: dict[str, Any] | None = None
    ) -> tuple[Composed, tuple]:
        """The stock method's contract (the caller passes ``(query, *params)``), with any-word matching and
        without the vector column."""
        select = SQL(_ANY_WORD_QUERY).format(
            columns=SQL(", ").join(Identifier(self.table_name, column) for column in PASSAGE_COLUMNS),
            schema=Identifier(self.schema_name),
            table=Identifier(self.table_name),
            terms=Identifier(self.schema_name, f"{self.table_name}_terms"),
            language=SQLLiteral(self.language),
        )
        where: Composed | SQL = SQL("")
        params: tuple = ()
        if filters:
            where, params = _convert_filters_to_where_clause_and_params(filters=filters, operator="AND")
        sort = SQL(" ORDER BY score DESC LIMIT {top_k}").format(top_k=SQLLiteral(top_k))
        return select + where + sort, tuple(params)


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """What a worker reads between questions (version, articles, chunk count): a database error becomes the
    one ``StoreUnavailableError`` the service reports, without psycopg's chain."""
    try:
        yield
    except (Error, DocumentStoreError) as error:
        raise StoreUnavailableError(f"the PostgreSQL store cannot be read: {reason(error)}") from None


def _without_vectors(documents: list[Document]) -> list[Document]:
    """Dense hits without their 384 floats, as the FAISS side returns passages (the stock dense query selects
    every column; keyword hits never fetch theirs, see ``PASSAGE_COLUMNS``): nothing downstream reads a passage's
    vector, and Haystack's pipeline deep-copies every passage it hands to a component (a copy of 4 passages:
    708 µs with their vectors, 160 µs without; ``benchmarks/hot_path_effects.py`` part 4, on 2 busy cores)."""
    return [replace(document, embedding=None) for document in documents]


def _where(dsn: str) -> str:
    parts = conninfo_to_dict(dsn)
    return f"host {parts.get('host', 'localhost')}, port {parts.get('port', 5432)}, database {parts.get('dbname', '?')}"


def _first_cause(error: BaseException) -> BaseException:
    """The database error that started it: the Haystack store wraps it, and its own ``rollback()`` inside our
    transaction raises a second error on top of it."""
    while isinstance(error.__context__, Error | DocumentStoreError):
        error = error.__context__
    return error


def reason(error: BaseException) -> str:
    """libpq's message without the repeated 'connection to server at … failed:' prefix, on one line."""
    text = " ".join(str(error).split())
    return text.rsplit("failed: ", 1)[-1] if "failed: " in text else text


@component
class ListEmbeddingRetriever:
    """``PgvectorEmbeddingRetriever`` that accepts the numpy vector our text embedder returns (it needs a list)."""

    def __init__(self, document_store: PgvectorDocumentStore, top_k: int = 10) -> None:
        self.retriever = PgvectorEmbeddingRetriever(document_store=document_store, top_k=top_k)

    @component.output_types(documents=list[Document])
    def run(
        self, query_embedding: Any, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        vector = [float(value) for value in query_embedding]
        return self.retriever.run(query_embedding=vector, filters=filters, top_k=top_k)


class PgvectorArticleStore:
    """Articles and their chunks in PostgreSQL: upsert/delete per article in one transaction, a version row.

    ``create=False`` opens an existing store without creating anything (a read replica, where the extension,
    tables and indexes come from the primary).
    """

    def __init__(
        self,
        *,
        embedding_dim: int = EMBEDDING_DIM,
        create: bool = True,
        schema: str = "public",
        language: str = "english",
        hnsw_ef_search: int | None = None,
    ) -> None:
        self.create = create
        self.schema = schema
        self.documents = AnyWordPgvectorDocumentStore(
            connection_string=Secret.from_env_var(DSN_ENV, strict=False),
            create_extension=create,
            schema_name=schema,
            table_name=CHUNKS_TABLE,
            language=language,
            embedding_dimension=embedding_dim,
            vector_function="cosine_similarity",
            search_strategy="hnsw",
            hnsw_index_name=f"{CHUNKS_TABLE}_hnsw",
            keyword_index_name=f"{CHUNKS_TABLE}_fts",
            hnsw_ef_search=hnsw_ef_search,
        )

    def open(self) -> PgvectorArticleStore:
        """Connect and make sure every table and index exists (or, with ``create=False``, that they do)."""
        try:
            if self.create:
                self._create_namespace()
                self._create_schema()
            self.documents._ensure_db_setup()
            self.version()
        except StoreUnavailableError:
            raise
        except (Error, DocumentStoreError) as error:
            raise StoreUnavailableError(f"the PostgreSQL store cannot be used: {reason(error)}") from None
        return self

    def close(self) -> None:
        self.documents.close()

    # -- reading ----------------------------------------------------------------------------------------

    def version(self) -> int:
        """Goes up by one with every change of the articles: workers compare it to drop stale caches."""
        row = self._connection().execute(self._sql("SELECT version FROM {version}")).fetchone()
        if row is None:
            raise StoreUnavailableError(f"{VERSION_TABLE} has no row; open the store once with create=True")
        return int(row[0])

    def articles(self) -> list[ArticleInfo]:
        rows = self._connection().execute(
            self._sql("SELECT article_id, title, source, date, url FROM {articles} ORDER BY article_id")
        )
        return [ArticleInfo(*row) for row in rows]

    def article_fingerprints(self) -> dict[str, str | None]:
        """Article id → the fingerprint its chunks were embedded with (``bot.indexing.article_fingerprint``)."""
        rows = self._connection().execute(self._sql("SELECT article_id, fingerprint FROM {articles}"))
        return {article_id: fingerprint for article_id, fingerprint in rows}

    def count_chunks(self, article_id: str | None = None) -> int:
        if article_id is None:
            return self.documents.count_documents()
        return self.documents.count_documents_by_filter(
            {"field": "meta.article_id", "operator": "==", "value": article_id}
        )

    # -- writing: one transaction per article --------------------------------------------------------------

    def upsert_article(self, info: ArticleInfo, chunks: Sequence[Document], fingerprint: str | None = None) -> int:
        """Replace the article's chunks and row (or add them) atomically; returns the new store version."""
        from bot.indexing import _checkpoint  # the fault-injection hook tests/test_pgvector_backend.py kills at

        if not chunks or any(chunk.meta.get("article_id") != info.article_id for chunk in chunks):
            raise ValueError(f"every chunk must belong to {info.article_id!r}, and there must be at least one")
        connection = self._connection()
        try:
            with connection.transaction():
                connection.execute(self._sql("DELETE FROM {chunks} WHERE meta->>'article_id' = %s"), (info.article_id,))
                self.documents.write_documents(list(chunks), policy=DuplicatePolicy.OVERWRITE)
                _checkpoint("pg-chunks-written")  # old chunks deleted, new ones written, nothing committed
                fields = asdict(info)
                connection.execute(
                    self._sql(
                        """INSERT INTO {articles} (article_id, title, source, date, url, chunks, fingerprint,
                          updated_at)
                        VALUES (%(article_id)s, %(title)s, %(source)s, %(date)s, %(url)s, %(chunks)s,
                          %(fingerprint)s, now())
                        ON CONFLICT (article_id) DO UPDATE SET title = EXCLUDED.title, source = EXCLUDED.source,
                          date = EXCLUDED.date, url = EXCLUDED.url, chunks = EXCLUDED.chunks,
                          fingerprint = EXCLUDED.fingerprint, updated_at = now()"""
                    ),
                    {**fields, "chunks": len(chunks), "fingerprint": fingerprint},
                )
                return self._bump_version()
        except (Error, DocumentStoreError) as error:
            raise StoreUnavailableError(
                f"adding {info.article_id!r} failed and changed nothing: {reason(_first_cause(error))}"
            ) from error

    def delete_article(self, article_id: str) -> bool:
        """Remove an article and its chunks atomically; False (and no new version) when it was not there."""
        connection = self._connection()
        try:
            with connection.transaction():
                removed = connection.execute(self._sql("DELETE FROM {articles} WHERE article_id = %s"), (article_id,))
                connection.execute(self._sql("DELETE FROM {chunks} WHERE meta->>'article_id' = %s"), (article_id,))
                if not removed.rowcount:
                    return False
                self._bump_version()
        except Error as error:
            raise StoreUnavailableError(
                f"removing {article_id!r} failed and changed nothing: {reason(_first_cause(error))}"
            ) from error
        return True

    # -- internals ----------------------------------------------------------------------------------------

    def _connection(self) -> Connection:
        self.documents._ensure_db_setup()
        assert self.documents._connection is not None
        return self.documents._connection

    def _sql(self, template: str) -> Composed:
        """``template`` with this store's table, index and function names in braces, and its {language}."""
        return SQL(template).format(
            chunks=Identifier(self.schema, CHUNKS_TABLE),
            articles=Identifier(self.schema, ARTICLES_TABLE),
            version=Identifier(self.schema, VERSION_TABLE),
            article_index=Identifier(f"{CHUNKS_TABLE}_article"),
            terms=Identifier(self.schema, f"{CHUNKS_TABLE}_terms"),
            terms_index=Identifier(f"{CHUNKS_TABLE}_terms_tsv"),
            terms_function=Identifier(self.schema, f"{CHUNKS_TABLE}_terms_update"),
            terms_trigger=Identifier(f"{CHUNKS_TABLE}_terms"),
            language=SQLLiteral(self.documents.language),
        )

    def _bump_version(self) -> int:
        row = (
            self._connection()
            .execute(self._sql("UPDATE {version} SET version = version + 1, changed_at = now() RETURNING version"))
            .fetchone()
        )
        assert row is not None
        return int(row[0])

    def _create_namespace(self) -> None:
        """The PostgreSQL schema itself, on a connection of its own (the Haystack store's first query needs it)."""
        if self.schema == "public":
            return
        with connect({DSN_ENV: self.documents.connection_string.resolve_value() or ""}, autocommit=True) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            connection.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.schema)))

    def _create_schema(self) -> None:
        """Our tables, created once under an advisory lock (the chunk table is the Haystack store's own)."""
        connection = self._connection()
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            connection.execute(
                self._sql(
                    """CREATE TABLE IF NOT EXISTS {articles} (
                      article_id text PRIMARY KEY, title text NOT NULL, source text, date text, url text,
                      chunks integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"""
                )
            )
            connection.execute(
                self._sql(
                    """CREATE TABLE IF NOT EXISTS {version} (
                      one boolean PRIMARY KEY DEFAULT true CHECK (one), version bigint NOT NULL,
                      changed_at timestamptz NOT NULL DEFAULT now())"""
                )
            )
            connection.execute(self._sql("ALTER TABLE {articles} ADD COLUMN IF NOT EXISTS fingerprint text"))
            connection.execute(self._sql("INSERT INTO {version} (version) VALUES (0) ON CONFLICT DO NOTHING"))
            connection.execute(
                self._sql("CREATE INDEX IF NOT EXISTS {article_index} ON {chunks} ((meta->>'article_id'))")
            )
            for statement in _TERMS_SCHEMA:
                connection.execute(self._sql(statement))


# -- indexing and retrieval on the store ----------------------------------------------------------------------


def index_article(
    store: PgvectorArticleStore, article: Article, indexing: Pipeline, fingerprint: str | None = None
) -> int:
    """Chunk and embed one article with qabot's indexing pipeline (``bot.indexing.build_indexing_pipeline``),
    then upsert it in one transaction; returns the chunks written."""
    from bot.chunking import article_document

    chunks = indexing.run({"chunker": {"documents": [article_document(article)]}})["embedder"]["documents"]
    store.upsert_article(article.info, chunks, fingerprint)
    return len(chunks)


def build_retrieval_pipeline(
    settings: Settings, store: PgvectorArticleStore, text_embedder: Any = None
) -> tuple[Pipeline, str]:
    """Question → MiniLM → pgvector HNSW top-k, + any-word full-text top-k → reciprocal rank fusion.

    Wired by ``bot.pipeline.assemble_retrieval``, the same graph and component names as the FAISS + bm25s
    retrieval; returns the pipeline and the component whose passages are read.
    """
    from bot.pipeline import assemble_retrieval, build_text_embedder

    retrieval = settings.retrieval
    return assemble_retrieval(
        settings,
        text_embedder if text_embedder is not None else build_text_embedder(settings),
        ListEmbeddingRetriever(document_store=store.documents, top_k=retrieval.dense_top_k),
        PgvectorKeywordRetriever(document_store=store.documents, top_k=retrieval.bm25_top_k)
        if retrieval.bm25_top_k > 0
        else None,
    )


@dataclass(frozen=True)
class PgvectorIndex:
    """The store as ``QAService`` reads it (the ``bot.stores.ArticleIndex`` protocol): one version of it.

    ``current_marker`` is one ``SELECT`` of the version row, cheap enough to run before every question; when
    it differs from ``marker`` the service reloads (new articles list, same connection) and drops its cache.
    """

    store: PgvectorArticleStore
    version: int
    articles: list[ArticleInfo]

    @classmethod
    def read(cls, store: PgvectorArticleStore) -> PgvectorIndex:
        version = store.version()
        return cls(store=store, version=version, articles=store.articles())

    @property
    def marker(self) -> str:
        return f"v{self.version}"

    @property
    def fingerprint(self) -> str:
        return f"pgvector:{self.store.schema}:v{self.version}"

    def current_marker(self, settings: Settings) -> str | None:
        with _reading():
            return f"v{self.store.version()}"

    def reload(self, settings: Settings) -> PgvectorIndex:
        with _reading():
            return PgvectorIndex.read(self.store)

    def count_chunks(self) -> int:
        with _reading():
            return self.store.count_chunks()

    def retrieval_pipeline(self, settings: Settings, text_embedder: Any) -> tuple[Pipeline, str]:
        return build_retrieval_pipeline(settings, self.store, text_embedder)
