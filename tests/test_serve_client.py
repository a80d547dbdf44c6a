"""``bot.serve_client.ServeClient``: what the Telegram bot does when the workers misbehave.

The workers' side is played by httpx's ``MockTransport`` (the HTTP library's test transport, not our code):
the point is the client's rules — which failures are retried, how often, and what reaches the user. The real
deployment (haproxy, two workers, the bot) is tests/test_webhook_deployment.py.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot.answer import Answer, Source
from bot.errors import EmptyQuestionError, InvalidQuestionError, QuestionTooLongError
from bot.serve_client import ServeClient, WorkersUnavailableError, conversation_key

session_loop = pytest.mark.asyncio(loop_scope="session")
ANSWER = Answer(
    question="Who backs Ahrar al-Sham?",
    text="Turkey, Saudi Arabia, and Qatar",
    score=0.93,
    context="It is backed by Turkey, Saudi Arabia, and Qatar.",
    context_start=16,
    context_end=47,
    source=Source("aleppo-siege-2016", "Syria", 10, 41),
)


def _client(
    responses: list[httpx.Response | Exception], seen: list[httpx.Request] | None = None, retries: int = 2
) -> ServeClient:
    """A client whose workers answer ``responses`` in turn; each request they get is appended to ``seen``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        outcome = responses.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return ServeClient("http://workers", timeout_s=2, retries=retries, transport=httpx.MockTransport(handle))


def _answer_body(reading: str | None = None) -> dict:
    return {**ANSWER.to_json_dict(), "interpreted_as": None, "reading": reading}


@session_loop
async def test_503_and_refused_connections_are_retried_then_answered(monkeypatch):
    monkeypatch.setattr("bot.serve_client.BACKOFF_S", 0.01)
    seen: list[httpx.Request] = []
    outcomes: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(503, json={"error": "no server"}),
        httpx.Response(200, json=_answer_body("reading ‘it’ as X")),
    ]
    client = _client(outcomes, seen)
    reply = await client.ask("Who backs Ahrar al-Sham?", "telegram-abc")
    await client.aclose()
    assert reply.answer == ANSWER and reply.reading == "reading ‘it’ as X"
    assert len(seen) == 3
    assert json.loads(seen[-1].content) == {"question": "Who backs Ahrar al-Sham?", "conversation_id": "telegram-abc"}


@session_loop
async def test_retries_are_bounded(monkeypatch):
    monkeypatch.setattr("bot.serve_client.BACKOFF_S", 0.01)
    seen: list[httpx.Request] = []
    client = _client([httpx.Response(502, text="<html>bad gateway</html>")] * 5, seen, retries=2)
    with pytest.raises(WorkersUnavailableError, match=r"failed 3 time\(s\); last: HTTP 502: <html>bad gateway"):
        await client.ask("q?", None)
    await client.aclose()
    assert len(seen) == 3


@session_loop
async def test_a_read_timeout_is_not_asked_twice():
    """The worker may have answered and remembered the turn: asking again would store the question twice."""
    seen: list[httpx.Request] = []
    client = _client([httpx.ReadTimeout("slow"), httpx.Response(200, json=_answer_body())], seen)
    with pytest.raises(WorkersUnavailableError, match="ReadTimeout"):
        await client.ask("q?", "c")
    await client.aclose()
    assert len(seen) == 1


@session_loop
async def test_the_workers_reason_keeps_the_kind_of_refusal():
    """A 422 is an ``InvalidQuestionError`` with the workers' message; its ``reason`` rebuilds the error type the
    chat handlers word their reply by (the text may change)."""
    client = _client(
        [
            httpx.Response(422, json={"error": "nothing to ask", "reason": "empty"}),
            httpx.Response(422, json={"error": "over the limit", "reason": "too_long"}),
            httpx.Response(422, json={"error": "the question is empty"}),
        ]
    )
    with pytest.raises(EmptyQuestionError, match=r"^nothing to ask$"):
        await client.ask(" ", "c")
    with pytest.raises(QuestionTooLongError, match=r"^over the limit$"):
        await client.ask("x" * 2000, "c")
    with pytest.raises(InvalidQuestionError, match=r"^the question is empty$") as no_reason:
        await client.ask(" ", "c")
    assert type(no_reason.value) is InvalidQuestionError  # no reason given: no kind guessed from the text
    await client.aclose()


@session_loop
async def test_a_422_that_is_not_the_workers_refusal_is_not_shown_as_one():
    """A proxy's page or an object without ``error`` is reported for the log (the user gets ``WORKERS_DOWN``),
    not turned into "Sorry, I can't answer that: <html>…" as if a question rule had refused the question."""
    client = _client(
        [
            httpx.Response(422, text="<html><body>Unprocessable</body></html>"),
            httpx.Response(422, json=["not", "an", "object"]),
            httpx.Response(422, json={"detail": [{"msg": "field required"}]}),
        ]
    )
    with pytest.raises(WorkersUnavailableError, match=r"^/ask did not answer JSON \(HTTP 422\)$"):
        await client.ask("q?", "c")
    with pytest.raises(WorkersUnavailableError, match=r"^/ask answered a JSON list, not an object$"):
        await client.ask("q?", "c")
    with pytest.raises(WorkersUnavailableError, match=r"^/ask answered 422 without an error message: \{'detail'"):
        await client.ask("q?", "c")
    await client.aclose()


@session_loop
async def test_a_reply_that_is_not_an_answer_is_reported_not_rendered():
    client = _client([httpx.Response(200, json={"answer": "x"})])
    with pytest.raises(WorkersUnavailableError, match="not an answer"):
        await client.ask("q?", "c")
    await client.aclose()


@session_loop
async def test_no_server_at_all_fails_fast_with_the_url():
    client = ServeClient("http://127.0.0.1:9", timeout_s=2, retries=2)  # port 9 (discard): nothing listens
    started = time.monotonic()
    with pytest.raises(WorkersUnavailableError, match=r"127\.0\.0\.1:9/ask failed 3 time"):
        await client.ask("Who backs Ahrar al-Sham?", "c1")
    await client.aclose()
    assert time.monotonic() - started < 10


def test_conversation_ids_are_stable_per_token_and_not_the_chat_id():
    key = conversation_key("123:token", 641)
    assert key == conversation_key("123:token", 641) and key.startswith("telegram-")
    assert "641" not in key and key != conversation_key("123:token", 642) != conversation_key("other:token", 641)
