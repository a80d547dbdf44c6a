"""``qabot serve``: the HTTP API on the real service (FastAPI's TestClient) and as a real process on loopback."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.articles import MAX_ARTICLE_BYTES
from bot.config import Settings, with_overrides
from bot.indexing import CURRENT_FILE, build_index
from bot.server import ADMIN_TOKEN_ENV, create_app
from tests.conftest import SEED_ARTICLE

ADMIN_TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
QUESTION = "who backs Ahrar al-Sham?"
BRIDGE_ARTICLE = (
    "---\ntitle: Kelvin harbour bridge reopens\nsource: Test Wire\ndate: 2026\n---\n"
    "The Kelvin harbour bridge reopened on Monday after two years of repairs. "
    "The repairs were carried out by the engineering firm Brandt & Sons. "
    "They cost 12 million euros, the city council said.\n"
)


@pytest.fixture(scope="module")
def client(qa_service) -> Iterator[TestClient]:
    """The API over the session's service, without an admin token (adding articles switched off)."""
    with TestClient(create_app(qa_service, admin_token=None)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def own_settings(project_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A private articles folder (a copy of the seed) and index: these tests add articles and break the index."""
    root = tmp_path_factory.mktemp("server")
    (root / "articles").mkdir()
    shutil.copy(SEED_ARTICLE, root / "articles" / SEED_ARTICLE.name)
    settings = with_overrides(project_settings, {"articles_dir": root / "articles", "index_dir": root / "index"})
    build_index(settings, progress_bar=False)
    return settings


@pytest.fixture(scope="module")
def admin_client(own_settings: Settings) -> Iterator[TestClient]:
    from bot.answering import QAService

    with TestClient(create_app(QAService.from_settings(own_settings), admin_token=ADMIN_TOKEN)) as test_client:
        yield test_client


# -- /ask ---------------------------------------------------------------------------------------------------


def test_ask_returns_the_cli_json_object(client: TestClient, qa_service):
    response = client.post("/ask", json={"question": QUESTION})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    # Exactly what `qabot chat --json` prints: the `ask --json` object plus `interpreted_as` and `reading`.
    assert body == {**qa_service.answer(QUESTION).to_json_dict(), "interpreted_as": None, "reading": None}
    assert body["answer"] == "Turkey, Saudi Arabia, and Qatar"


def test_unanswerable_question_has_null_answer(client: TestClient):
    body = client.post("/ask", json={"question": "Who wrote Pride and Prejudice?"}).json()
    assert body["answer"] is None and body["source"] is None


def test_a_new_conversation_answers_like_a_plain_question(client: TestClient):
    plain = client.post("/ask", json={"question": "What does SOHR stand for?"})
    with_id = client.post("/ask", json={"question": "What does SOHR stand for?", "conversation_id": "chat-42"})
    assert with_id.status_code == 200 and with_id.json() == plain.json()


def test_a_follow_up_in_a_conversation_is_resolved(client: TestClient):
    """FAISS backend: the conversation lives in this process (tests/test_pgvector_backend.py: across workers)."""
    client.post("/ask", json={"question": "Who backs Ahrar al-Sham?", "conversation_id": "chat-43"})
    follow_up = "Who characterises it as a terror organisation?"
    answer = client.post("/ask", json={"question": follow_up, "conversation_id": "chat-43"}).json()
    alone = client.post("/ask", json={"question": follow_up}).json()
    # As `chat --json`: `question` is what was asked, `interpreted_as` how it was read.
    assert answer["question"] == follow_up and "Ahrar al-Sham" in answer["interpreted_as"]
    assert "Russia" in (answer["answer"] or "")
    assert alone["question"] == follow_up and alone["interpreted_as"] is None


def test_a_conversation_can_be_reset(client: TestClient):
    """DELETE /conversations/{id} (the Telegram bot's /new in front of workers): the follow-up is read alone."""
    follow_up = {"question": "Who characterises it as a terror organisation?", "conversation_id": "chat-44"}
    client.post("/ask", json={"question": "Who backs Ahrar al-Sham?", "conversation_id": "chat-44"})
    assert client.delete("/conversations/chat-44").status_code == 204
    assert client.post("/ask", json=follow_up).json()["interpreted_as"] is None
    assert client.delete("/conversations/never-used").status_code == 204  # nothing to forget is not an error
    assert client.delete("/conversations/" + "x" * 201).status_code == 422


def test_articles_lists_the_shared_library(client: TestClient, qa_service):
    body = client.get("/articles").json()
    assert body["articles"][0]["article_id"] == "aleppo-siege-2016"
    assert {a["article_id"] for a in body["articles"]} == {a.article_id for a in qa_service.articles()}
    assert set(body["articles"][0]) == {"article_id", "title", "source", "date", "url"}


def test_the_http_answer_is_the_chat_json_line(client: TestClient, qa_service):
    """One conversation turn for the CLI chat and the HTTP API: the same questions give the same objects."""
    from bot.chat import Conversation, run_json

    questions = ["Who backs Ahrar al-Sham?", "Who characterises it as a terror organisation?"]
    lines: list[str] = []
    with Conversation(qa_service) as conversation:
        run_json(conversation, questions, lines.append)
    over_http = [client.post("/ask", json={"question": q, "conversation_id": "chat-cli"}).json() for q in questions]
    assert over_http == [json.loads(line) for line in lines]


def test_http_conversations_are_kept_apart_from_telegram_chats(qa_service):
    """One store (the pgvector backend shares it): an HTTP client can never read or continue a Telegram chat."""
    from bot.conversation import InMemoryConversationStore, Turn
    from bot.telegram_chat import telegram_conversation_id

    store = InMemoryConversationStore()
    telegram_chat = telegram_conversation_id(621)
    store.append(telegram_chat, Turn("Who backs Ahrar al-Sham?", "Who backs Ahrar al-Sham?", "Turkey"))
    follow_up = "Who characterises it as a terror organisation?"
    with TestClient(create_app(qa_service, admin_token=None, conversations=store)) as api:
        for guess in (telegram_chat, "621"):
            body = api.post("/ask", json={"question": follow_up, "conversation_id": guess}).json()
            # not read as a follow-up of the Telegram chat (neither rewritten nor reported as rewritten)
            assert body["question"] == follow_up and body.get("interpreted_as") is None, guess
        api.post("/ask", json={"question": "What does SOHR stand for?", "conversation_id": "mine"})
    assert len(store.get(telegram_chat)) == 1  # the Telegram chat was not continued
    assert len(store.get("http:mine")) == 1 and store.get("mine") == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"question": "   "}, 422, "the question is empty"),
        ({"question": "x" * 1500}, 422, "limit is 1,000"),
        ({}, 422, "question: Field required"),
        ({"question": 42}, 422, "question: Input should be a valid string"),
        ({"question": "who?", "chat": 1}, 422, "chat: Extra inputs are not permitted"),
        ({"question": "who?", "conversation_id": "c" * 201}, 422, "conversation_id: String should have at most"),
    ],
)
def test_bad_questions_get_a_clear_4xx(client: TestClient, body: dict, status: int, message: str):
    response = client.post("/ask", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_refused_question_says_which_rule_refused_it(client: TestClient):
    """``reason`` is what the Telegram bot in front of the workers words its reply by (bot.serve_client)."""
    assert client.post("/ask", json={"question": " \n "}).json()["reason"] == "empty"
    assert client.post("/ask", json={"question": "x" * 1500}).json()["reason"] == "too_long"
    assert client.post("/ask", json={"question": "a " * 499}).json()["reason"] == "too_long"
    assert "reason" not in client.post("/ask", json={}).json()  # a body that is not a question at all


def test_malformed_json_is_400(client: TestClient):
    response = client.post("/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not valid JSON")


def test_bodies_over_the_limit_are_413(client: TestClient):
    big = json.dumps({"question": "x" * 20_000})
    declared = client.post("/ask", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "over the limit" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
        yield b'{"question": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    streamed = client.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


# -- /health and the docs -----------------------------------------------------------------------------------


def test_health_reports_the_index(client: TestClient, qa_service):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "articles": 1,
        "chunks": qa_service.check_index(),
        "index": qa_service.index_fingerprint,
    }


def test_health_is_stale_while_the_build_on_disk_cannot_be_read(admin_client: TestClient, own_settings: Settings):
    """The worker keeps answering from the index in memory (issue 9), and /health says the disk is unreadable."""
    current = own_settings.index_dir / CURRENT_FILE
    good = current.read_text()
    current.write_text("build-that-does-not-exist\n")
    try:
        health = admin_client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "stale" and "unreadable" in health.json()["error"]
        ask = admin_client.post("/ask", json={"question": "who is besieged in Aleppo?"})
        assert ask.status_code == 200 and ask.json()["answer"]
    finally:
        current.write_text(good)
    health = admin_client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_openapi_docs_are_served_without_a_cdn(client: TestClient):
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/articles", "/health"} <= set(schema["paths"])
    assert set(schema["paths"]["/articles"]["post"]["requestBody"]["content"]) == {"text/plain", "application/json"}
    page = client.get("/docs")
    assert page.status_code == 200 and "cdn." not in page.text
    script = page.text.split('src="', 1)[1].split('"', 1)[0]
    assert client.get(script).status_code == 200


# -- /articles ----------------------------------------------------------------------------------------------


def test_adding_articles_is_off_without_a_server_token(client: TestClient):
    response = client.post("/articles", content=BRIDGE_ARTICLE, headers={**AUTH, "content-type": "text/plain"})
    assert response.status_code == 403 and ADMIN_TOKEN_ENV in response.json()["error"]


def test_adding_articles_needs_the_right_token(admin_client: TestClient, own_settings: Settings):
    headers = {"content-type": "text/plain"}
    missing = admin_client.post("/articles", content=BRIDGE_ARTICLE, headers=headers)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = admin_client.post(
        "/articles", content=BRIDGE_ARTICLE, headers={**headers, "Authorization": "Bearer " + ADMIN_TOKEN[:-1]}
    )
    assert wrong.status_code == 403
    assert sorted(p.name for p in own_settings.articles_dir.iterdir()) == [SEED_ARTICLE.name]


def test_added_text_article_is_answered_at_once(admin_client: TestClient, own_settings: Settings):
    question = {"question": "Which firm repaired the Kelvin harbour bridge?"}
    assert admin_client.post("/ask", json=question).json()["answer"] is None
    response = admin_client.post(
        "/articles?article_id=kelvin-bridge", content=BRIDGE_ARTICLE, headers={**AUTH, "content-type": "text/plain"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["article_id"] == "kelvin-bridge" and body["title"] == "Kelvin harbour bridge reopens"
    assert body["articles"] == 2
    assert (own_settings.articles_dir / "kelvin-bridge.txt").read_text() == BRIDGE_ARTICLE
    answer = admin_client.post("/ask", json=question).json()
    assert "Brandt & Sons" in answer["answer"] and answer["source"]["article_id"] == "kelvin-bridge"
    assert admin_client.get("/health").json()["articles"] == 2


def test_json_article_gets_an_id_from_its_title(admin_client: TestClient, own_settings: Settings):
    article = {"title": "Tram line 9 opens", "source": "Test Wire", "text": "Tram line 9 opened in Ostrava on Friday."}
    response = admin_client.post("/articles", json=article, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["article_id"] == "tram-line-9-opens"
    assert "source: Test Wire" in (own_settings.articles_dir / "tram-line-9-opens.txt").read_text()
    again = admin_client.post("/articles", json=article, headers=AUTH)  # the same article again: no change
    assert again.status_code == 201 and again.json()["index"] == response.json()["index"]
    other = admin_client.post("/articles", json={**article, "text": "Another text."}, headers=AUTH)
    assert other.status_code == 409 and "already exists" in other.json()["error"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b"NOW WATCH: a video\n", "text/plain", 422, "no title or no text"),
        (b"Title\n\xff\xfe body", "text/plain", 422, "not UTF-8"),
        (b"<article/>", "application/xml", 415, "text/plain or application/json"),
        (json.dumps({"title": "a\nb", "text": "x"}).encode(), "application/json", 422, "title: Value error"),
        (
            json.dumps({"title": "T", "text": "x", "article_id": "Bad Id"}).encode(),
            "application/json",
            422,
            "article_id",
        ),
        (b"Title\n" + b"x" * (MAX_ARTICLE_BYTES + 1), "text/plain", 413, "over the limit"),
    ],
)
def test_bad_articles_are_refused_and_change_nothing(
    admin_client: TestClient, own_settings: Settings, content: bytes, content_type: str, status: int, message: str
):
    before = sorted(p.name for p in own_settings.articles_dir.iterdir())
    response = admin_client.post("/articles", content=content, headers={**AUTH, "content-type": content_type})
    assert response.status_code == status
    assert message in response.json()["error"]
    assert sorted(p.name for p in own_settings.articles_dir.iterdir()) == before


# -- `qabot serve` as a real process ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _qabot(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bot.cli import app; app()", *args]


@pytest.fixture(scope="module")
def config_file(service_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "config.yaml"
    path.write_text(f"index_dir: {service_settings.index_dir}\n")
    return path


def test_serve_process_answers_like_the_cli_and_stops_gracefully(
    config_file: Path, tmp_path: Path, article_questions: list[dict]
):
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            _qabot("serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config_file)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.3)

        served = httpx.post(f"{base}/ask", json={"question": QUESTION}, timeout=60)
        cli = subprocess.run(
            _qabot("ask", "--json", QUESTION, "--config", str(config_file)), capture_output=True, text=True, timeout=300
        )
        assert cli.returncode == 0, cli.stderr
        # the `ask --json` object plus `interpreted_as` and `reading`, as `chat --json` writes it
        expected = {**json.loads(cli.stdout), "interpreted_as": None, "reading": None}
        assert served.status_code == 200 and served.json() == expected

        # Questions in flight when SIGTERM arrives are still answered, then the process ends. uvicorn re-raises
        # the signal after its graceful shutdown, so the exit status is "terminated by SIGTERM".
        questions = [qa["question"] for qa in article_questions][:24]
        results: dict[str, int | str] = {}
        pool = httpx.Client(base_url=base, timeout=120, limits=httpx.Limits(max_connections=len(questions)))

        def ask(question: str) -> None:
            try:
                results[question] = pool.post("/ask", json={"question": question}).status_code
            except httpx.HTTPError as error:
                results[question] = repr(error)

        threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=150)
        pool.close()
        assert process.wait(timeout=60) == -signal.SIGTERM, log_path.read_text()
        assert results == dict.fromkeys(questions, 200)
        output = log_path.read_text()
        assert "Shutting down" in output and "Finished server process" in output
        assert "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_on_a_taken_port_is_one_clear_error(config_file: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _qabot("serve", "--port", str(port), "--config", str(config_file)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_an_unexpected_failure_is_a_json_500(own_settings: Settings, tmp_path: Path):
    from bot.answering import QAService

    not_a_folder = tmp_path / "articles-is-a-file"
    not_a_folder.write_text("")
    service = QAService.from_settings(with_overrides(own_settings, {"articles_dir": not_a_folder}))
    with TestClient(create_app(service, admin_token=ADMIN_TOKEN), raise_server_exceptions=False) as test_client:
        response = test_client.post("/articles", content=BRIDGE_ARTICLE, headers={**AUTH, "content-type": "text/plain"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; the server log has the details"}


def test_adding_an_article_does_not_block_other_requests(admin_client: TestClient, own_settings: Settings):
    """Re-indexing runs in the thread pool: the event loop keeps answering while it works."""
    finished: list[str] = []
    # Long enough that embedding it takes seconds: indexing is incremental, so only this article is embedded.
    filler = " ".join(f"Inspection note {i} records the state of the Aldgate bridge deck." for i in range(3000))
    article = BRIDGE_ARTICLE.replace("Kelvin", "Aldgate") + "\n\n" + filler + "\n"

    def add() -> None:
        response = admin_client.post(
            "/articles?article_id=aldgate-bridge", content=article, headers={**AUTH, "content-type": "text/plain"}
        )
        finished.append(f"add {response.status_code}")

    adding = threading.Thread(target=add)
    adding.start()
    time.sleep(0.2)  # the add is under way (it embeds ~1,000 chunks: seconds, not milliseconds)
    docs = admin_client.get("/openapi.json")
    finished.append(f"docs {docs.status_code}")
    adding.join(timeout=300)
    assert finished == ["docs 200", "add 201"]


def test_http_questions_are_answered_from_the_shared_library_only(
    project_settings: Settings, tmp_path_factory: pytest.TempPathFactory
):
    """A Telegram chat's own article (``user_articles: per_chat``) is never an HTTP answer; shared ones are."""
    from bot.answering import QAService
    from bot.ingest import ingest_bytes
    from bot.ingest.library import chat_owner

    root = tmp_path_factory.mktemp("server-library")
    (root / "articles").mkdir()
    shutil.copy(SEED_ARTICLE, root / "articles" / SEED_ARTICLE.name)
    settings = with_overrides(project_settings, {"articles_dir": root / "articles", "index_dir": root / "index"})
    build_index(settings, progress_bar=False)
    private = BRIDGE_ARTICLE.replace("title: Kelvin harbour bridge reopens", "title: A chat's own bridge notes") + (
        "The council will paint new cycle lanes on the approach roads once the bridge is open again. " * 3
    )
    ingest_bytes(settings, private.encode(), "bridge.txt", owner=chat_owner(501))
    service = QAService.from_settings(settings)
    assert service.answer("Which firm carried out the repairs of the bridge?").text == "Brandt & Sons"  # indexed
    with TestClient(create_app(service, admin_token=None)) as api:
        private_question = api.post("/ask", json={"question": "Which firm carried out the repairs of the bridge?"})
        shared_question = api.post("/ask", json={"question": QUESTION})
        listed = api.get("/articles").json()["articles"]  # the bot's /help and /sources in front of workers
    assert [article["article_id"] for article in listed] == ["aleppo-siege-2016"]  # not the chat's own article
    assert "Brandt" not in (private_question.json()["answer"] or "")
    assert shared_question.json()["answer"] == "Turkey, Saudi Arabia, and Qatar"
