"""``document_store.backend: pgvector`` end to end on a real PostgreSQL: ``qabot index``/``index add``/``remove``
write the store, ``QAService`` workers answer from it, and ``qabot serve`` keeps conversations in it.

The server comes from ``QABOT_PG_DSN`` or ``scripts/dev-postgres.sh`` (the ``pg_dsn`` fixture of
tests/test_pgvector_store.py); each module run gets a schema of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot import stores
from bot.answering import QAService
from bot.cli import app
from bot.config import PROJECT_ROOT, DocumentStoreSettings, Settings, with_overrides
from bot.errors import ArticleError
from bot.evaluation import evaluate, load_questions
from bot.indexing import KILL_AT_ENV
from bot.server import create_app
from bot.stores.pgvector_store import DSN_ENV, StoreUnavailableError
from tests.conftest import QUESTIONS_FILE
from tests.test_pgvector_store import _drop_schema, _new_schema, _refuse_deletes, pg_dsn  # noqa: F401 (a fixture)

NEW_ARTICLE = """---
title: Port Elwin bridge reopens after repairs
source: Test Wire
---
The harbour bridge of Port Elwin reopened on Monday after eleven months of repairs. The works cost 41 million
euros, the city council said, and were paid for by the regional development fund. Mayor Ilse Varga cut the
ribbon in front of several hundred residents. The bridge carries about 30,000 vehicles a day and had been closed
since a cargo ship struck one of its piers in a storm last spring. Engineers replaced two of the steel spans and
strengthened the remaining piers. Ferries that had carried commuters across the harbour during the closure will
return to their normal timetable next week, the port authority said.
"""
NEW_QUESTION = "How much did the repairs of the Port Elwin bridge cost?"


@pytest.fixture(scope="module")
def pg_settings(pg_dsn: str, project_settings: Settings, tmp_path_factory) -> Iterator[Settings]:  # noqa: F811
    """The shipped config on the pgvector backend: its own schema, a copy of the articles, indexed once."""
    previous = os.environ.get(DSN_ENV)
    os.environ[DSN_ENV] = pg_dsn
    schema = _new_schema(pg_dsn)
    root = tmp_path_factory.mktemp("pgwire")
    shutil.copytree(project_settings.resolve(project_settings.articles_dir), root / "articles")
    settings = with_overrides(
        project_settings,
        {
            "articles_dir": root / "articles",
            "index_dir": root / "index",
            "document_store": DocumentStoreSettings(backend="pgvector", pg_schema=schema),
        },
    )
    stores.build_index(settings, progress_bar=False)
    yield settings
    _drop_schema(pg_dsn, schema)
    if previous is None:
        os.environ.pop(DSN_ENV, None)
    else:
        os.environ[DSN_ENV] = previous


@pytest.fixture(scope="module")
def workers(pg_settings: Settings) -> tuple[QAService, QAService]:
    """Two answering services on one store, as two ``qabot serve`` workers would be."""
    return QAService.from_settings(pg_settings), QAService.from_settings(pg_settings)


def _config_file(settings: Settings, folder: Path) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "articles_dir": str(settings.articles_dir),
                "index_dir": str(settings.index_dir),
                "embedder": {"onnx_dir": str(settings.resolve(settings.embedder.onnx_dir))},
                "reader": {"model": str(settings.resolve(settings.reader.model))},
                "document_store": settings.document_store.model_dump(),
            }
        )
    )
    return config


# -- quality: the same answers as FAISS ---------------------------------------------------------------------


def test_article_set_f1_within_2_points_of_faiss(workers, qa_service):
    questions = load_questions(QUESTIONS_FILE)
    on_pgvector = evaluate(workers[0], questions)
    on_faiss = evaluate(qa_service, questions)
    print(
        f"{len(questions)} questions: pgvector EM {on_pgvector.exact_match:.1f} F1 {on_pgvector.f1:.1f} "
        f"recall {on_pgvector.retrieval_recall:.1f}; FAISS EM {on_faiss.exact_match:.1f} F1 {on_faiss.f1:.1f} "
        f"recall {on_faiss.retrieval_recall:.1f}"
    )
    assert on_pgvector.answerable > 40
    assert abs(on_pgvector.f1 - on_faiss.f1) <= 2.0


def test_indexing_again_embeds_nothing(pg_settings: Settings):
    result = stores.build_index(pg_settings, progress_bar=False)
    assert not result.built and result.embedded_chunks == 0 and result.articles >= 1


def test_article_scope_is_honoured(workers):
    worker, _ = workers
    assert worker.answer("Who backs Ahrar al-Sham?").text
    assert worker.answer("Who backs Ahrar al-Sham?", scope=frozenset({"no-such-article"})).text is None


# -- two workers, one store ---------------------------------------------------------------------------------


def test_an_article_added_through_one_worker_is_answered_by_the_other(workers, pg_settings: Settings, tmp_path):
    first, second = workers
    before = second.answer(NEW_QUESTION)  # cached by the second worker now
    assert before.source is None or before.source.article_id != "port-elwin-bridge"

    path = tmp_path / "port-elwin-bridge.txt"
    path.write_text(NEW_ARTICLE, encoding="utf-8")
    info, result = stores.add_article(pg_settings, path, progress_bar=False)  # what POST /articles does
    assert result.built and result.embedded_chunks >= 1 and info.article_id == "port-elwin-bridge"
    assert "port-elwin-bridge" in [a.article_id for a in first.articles()]

    after = second.answer(NEW_QUESTION)  # no restart: the version row changed, the cache was dropped
    assert after.source is not None and after.source.article_id == "port-elwin-bridge"
    assert "41 million" in (after.text or "")

    removed = stores.remove_article(pg_settings, "port-elwin-bridge", progress_bar=False)
    assert removed.articles == len(second.articles())
    gone = first.answer(NEW_QUESTION)
    assert gone.source is None or gone.source.article_id != "port-elwin-bridge"
    assert not (pg_settings.resolve(pg_settings.articles_dir) / "port-elwin-bridge.txt").exists()


def test_a_crash_in_the_middle_of_an_add_leaves_no_half_article(pg_settings: Settings, tmp_path, workers):
    """``qabot index add`` SIGKILLed after the article's chunks were written, before the commit."""
    _, worker = workers
    store = stores.load_index(pg_settings)
    version, chunks = store.store.version(), store.count_chunks()
    path = tmp_path / "port-elwin-bridge.txt"
    path.write_text(NEW_ARTICLE, encoding="utf-8")
    config = _config_file(pg_settings, tmp_path)
    killed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "index", "add", str(path), "--config", str(config)],
        env={**os.environ, KILL_AT_ENV: "pg-chunks-written"},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    assert store.store.version() == version and store.count_chunks() == chunks
    assert store.store.count_chunks("port-elwin-bridge") == 0
    assert "port-elwin-bridge" not in [a.article_id for a in store.store.articles()]
    assert worker.answer(NEW_QUESTION).source is None or worker.answer(NEW_QUESTION).source.article_id != (
        "port-elwin-bridge"
    )
    # The file had been copied; the next `qabot index` finishes the job, then the test tidies up.
    assert stores.build_index(pg_settings, progress_bar=False).embedded_chunks >= 1
    assert store.store.count_chunks("port-elwin-bridge") >= 1
    stores.remove_article(pg_settings, "port-elwin-bridge", progress_bar=False)
    store.store.close()


def test_remove_on_another_machine_without_the_file(pg_settings: Settings, tmp_path, workers):
    """A second machine (its own articles folder) removes an article another machine added to the store."""
    path = tmp_path / "port-elwin-bridge.txt"
    path.write_text(NEW_ARTICLE, encoding="utf-8")
    stores.add_article(pg_settings, path, progress_bar=False)
    overrides = {"articles_dir": tmp_path / "other-articles", "index_dir": tmp_path / "other-index"}
    elsewhere = with_overrides(pg_settings, overrides)
    (tmp_path / "other-articles").mkdir()
    stores.remove_article(elsewhere, "port-elwin-bridge", progress_bar=False)
    assert "port-elwin-bridge" not in [a.article_id for a in workers[0].articles()]
    with pytest.raises(ArticleError, match="no article 'port-elwin-bridge' in the store"):
        stores.remove_article(elsewhere, "port-elwin-bridge", progress_bar=False)
    (pg_settings.resolve(pg_settings.articles_dir) / "port-elwin-bridge.txt").unlink()  # tidy this machine


def test_a_failed_remove_keeps_the_file_and_the_chunks(pg_settings: Settings, pg_dsn: str, tmp_path):  # noqa: F811
    """The database is changed before the file: when PostgreSQL refuses, the article is still whole."""
    path = tmp_path / "port-elwin-bridge.txt"
    path.write_text(NEW_ARTICLE, encoding="utf-8")
    stores.add_article(pg_settings, path, progress_bar=False)
    copied = pg_settings.resolve(pg_settings.articles_dir) / "port-elwin-bridge.txt"
    schema = pg_settings.document_store.pg_schema
    _refuse_deletes(pg_dsn, schema)
    try:
        with pytest.raises(StoreUnavailableError, match="removing 'port-elwin-bridge' failed"):
            stores.remove_article(pg_settings, "port-elwin-bridge", progress_bar=False)
        assert copied.exists()
        index = stores.load_index(pg_settings)
        assert "port-elwin-bridge" in [a.article_id for a in index.articles]
        index.store.close()
    finally:
        _refuse_deletes(pg_dsn, schema, refuse=False)
    stores.remove_article(pg_settings, "port-elwin-bridge", progress_bar=False)
    assert not copied.exists()


def test_health_reports_the_store(workers):
    with TestClient(create_app(workers[0])) as client:
        health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["index"].startswith("pgvector:") and health.json()["chunks"] >= 20


# -- configuration errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        (None, f"error: {DSN_ENV} is not set"),
        ("host=127.0.0.1 port=1 dbname=qabot user=qabot password=hunter2-secret", "Connection refused"),
    ],
)
def test_a_bad_dsn_is_one_clear_error_line(pg_settings: Settings, tmp_path, monkeypatch, dsn, message):
    if dsn is None:
        monkeypatch.delenv(DSN_ENV)
    else:
        monkeypatch.setenv(DSN_ENV, dsn)
    config = _config_file(pg_settings, tmp_path)
    for command in (["index", "--config", str(config)], ["ask", "who backs Ahrar al-Sham?", "--config", str(config)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error: "), result.stderr
        assert "hunter2-secret" not in result.stderr


def test_a_bad_backend_name_is_a_config_error(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("document_store:\n  backend: mongodb\n")
    result = CliRunner().invoke(app, ["index", "--config", str(config)])
    assert result.exit_code == 2 and "document_store.backend" in result.stderr


# -- conversations in the shared store ----------------------------------------------------------------------


def test_a_follow_up_asked_to_another_worker_is_resolved(workers, pg_settings: Settings):
    first, second = workers
    with TestClient(create_app(first)) as one, TestClient(create_app(second)) as two:
        opening = one.post("/ask", json={"question": "Who backs Ahrar al-Sham?", "conversation_id": "pg-chat-7"})
        assert "Turkey" in (opening.json()["answer"] or "")
        follow_up = {"question": "Who characterises it as a terror organisation?", "conversation_id": "pg-chat-7"}
        answer = two.post("/ask", json=follow_up).json()
        alone = two.post("/ask", json={"question": follow_up["question"], "conversation_id": "pg-chat-8"}).json()
    assert "Ahrar al-Sham" in answer["interpreted_as"]  # read as "Who characterises Ahrar al-Sham as …"
    assert "Russia" in (answer["answer"] or "")
    assert alone["interpreted_as"] is None


def test_conversation_state_is_bounded_and_expires(pg_settings: Settings):
    from bot.conversation import Turn
    from bot.stores.pgvector_conversations import PostgresConversationStore

    store = PostgresConversationStore(pg_settings, max_turns=2, idle_seconds=0.5)
    for n in range(3):
        store.append("c1", Turn(f"q{n}", f"q{n}", f"a{n}", ("it", "X") if n else None))
    assert [t.question for t in store.get("c1")] == ["q1", "q2"] and store.get("c1")[0].reference == ("it", "X")
    assert store.get("other") == []
    import time

    time.sleep(0.7)
    assert store.get("c1") == []
    store.reset("c1")
    store.close()


def test_conversation_store_reconnects_after_the_connection_drops(pg_settings: Settings, pg_dsn: str):  # noqa: F811
    import psycopg

    from bot.conversation import Turn
    from bot.stores.pgvector_conversations import PostgresConversationStore

    store = PostgresConversationStore(pg_settings)
    store.append("c2", Turn("q", "q", "a"))
    pid = store._connection.info.backend_pid
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert [t.question for t in store.get("c2")] == ["q"]  # a new connection, the same state
    store.reset("c2")
    store.close()


def test_conversations_stay_in_memory_with_faiss(project_settings: Settings):
    from bot.conversation import InMemoryConversationStore

    assert isinstance(stores.conversation_store(project_settings), InMemoryConversationStore)


def test_a_store_that_cannot_be_reached_fails_at_start(pg_settings: Settings, monkeypatch):
    monkeypatch.setenv(DSN_ENV, "postgresql://qabot:x@127.0.0.1:1/qabot")
    with pytest.raises(StoreUnavailableError, match="cannot connect to PostgreSQL"):
        stores.load_index(pg_settings)


# -- the local deployment: workers behind haproxy -----------------------------------------------------------


def _free_port_base(count: int) -> int:
    import random
    import socket

    for _ in range(50):
        base = random.randint(20_000, 40_000)
        try:
            sockets = [socket.create_server(("127.0.0.1", base + i)) for i in range(count)]
        except OSError:
            continue
        for sock in sockets:
            sock.close()
        return base
    raise RuntimeError("no free ports")


def test_deploy_local_two_workers_share_store_and_conversations(pg_settings: Settings, tmp_path):
    """scripts/deploy-local.sh: haproxy round-robins, so the follow-up reaches the other worker."""
    import httpx

    script = PROJECT_ROOT / "scripts" / "deploy-local.sh"
    base = _free_port_base(3)
    env = {**os.environ, "QABOT_CONFIG": str(_config_file(pg_settings, tmp_path)),
           "QABOT_DEPLOY_DIR": str(tmp_path / "run"), "QABOT_LB_PORT": str(base)}  # fmt: skip
    started = subprocess.run(["bash", str(script), "start", "2"], env=env, capture_output=True, text=True, timeout=600)
    if started.returncode != 0 and os.geteuid() != 0 and "haproxy is missing" in started.stderr:
        pytest.skip("haproxy is not installed and cannot be installed here (not root)")
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
        with httpx.Client(base_url=url, timeout=60) as client:
            client.post("/ask", json={"question": "Who backs Ahrar al-Sham?", "conversation_id": "lb-1"})
            follow_up = client.post(
                "/ask", json={"question": "Who characterises it as a terror organisation?", "conversation_id": "lb-1"}
            ).json()
        assert "Ahrar al-Sham" in follow_up["interpreted_as"] and "Russia" in (follow_up["answer"] or "")
        answered = [(tmp_path / "run" / f"worker-{i}.log").read_text().count("POST /ask") for i in (1, 2)]
        assert answered == [1, 1]  # one question each: the second worker resolved the first one's conversation
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True, timeout=120)
