"""The Telegram bot as a thin front end: questions go to ``qabot serve`` workers (``POST /ask``), not to a local model.

With ``telegram.answer_url`` (or ``QABOT_SERVE_URL``) set, the bot process loads no reader and no embedder: it
starts in a second and stays small, and every answer comes from the workers behind the load balancer, which keep
the conversations in the shared store (PostgreSQL with pgvector). ``ServeClient`` is the one class that speaks
the HTTP API; the chat handlers call it through the same ``ChatAnswerer`` interface as the in-process answerer
(``bot.telegram_chat``), so rendering, buttons and follow-up notes are the same in both modes.

- ``ask``: ``POST /ask {"question", "conversation_id"}``; the reply is ``Answer.to_json_dict`` plus
  ``interpreted_as`` and ``reading``, read back with ``Answer.from_json_dict``. 422 is the worker's message about
  a bad question (``InvalidQuestionError``, its type rebuilt from the body's ``reason``); a 422 whose body is not
  the workers' ``{"error": ...}`` object (a proxy's page) is ``WorkersUnavailableError``, not shown as a refusal.
- ``reset``: ``DELETE /conversations/{id}`` (``/new``), ``articles``: ``GET /articles`` (``/help``, ``/sources``,
  the link under an answer; cached for ``ARTICLES_TTL_S``).
- Connection errors, 502 and 503 (a worker restarting, haproxy with no healthy worker) are retried
  ``answer_retries`` times with a short backoff; a read timeout is not (the question may have been answered
  and remembered). Whatever still fails is ``WorkersUnavailableError`` with a one-line reason for the log; the
  user gets one clear sentence (``WORKERS_DOWN``), never a traceback. The bot token is never part of a request.

Conversation ids: the bot sends ``telegram-<HMAC of the chat id>`` (key derived from the bot token), not the chat
id. An id is a capability: whoever knows it may continue or reset that conversation over HTTP (which is why
``DELETE /conversations/{id}`` needs no admin token), and a chat id is guessable, its HMAC is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.answer import Answer
from bot.articles import ArticleInfo
from bot.config import TelegramSettings
from bot.errors import InvalidQuestionError, QabotError, invalid_question

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503})
BACKOFF_S = 0.25  # then 0.5, 1, …: a restarting worker or a haproxy health check needs a moment
ARTICLES_TTL_S = 60.0
CONNECT_TIMEOUT_S = 5.0
WORKERS_DOWN = "Sorry, I can't reach my answering service right now. Please try again in a minute."


class WorkersUnavailableError(QabotError):
    """No worker answered (after the retries); the message is for the log, the user gets ``WORKERS_DOWN``."""


@dataclass(frozen=True)
class ChatReply:
    """One answered turn: the answer and how a follow-up was read ("reading ‘it’ as Ahrar al-Sham", or None)."""

    answer: Answer
    reading: str | None = None


def conversation_key(token: str, chat_id: int) -> str:
    """The chat's ``conversation_id`` at the workers: stable across restarts, not guessable without the token."""
    secret = hashlib.sha256(f"qabot-conversations:{token}".encode()).digest()
    return "telegram-" + hmac.new(secret, str(chat_id).encode(), hashlib.sha256).hexdigest()[:32]


class ServeClient:
    """``qabot serve``'s HTTP API as the bot needs it; one ``httpx.AsyncClient`` (connection pool) for all chats.

    ``base_url`` comes without a trailing slash, as ``telegram.answer_url`` is stored (its validator strips it).
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 30.0,
        retries: int = 2,
        conversation_secret: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.retries = retries
        self._conversation_secret = conversation_secret
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            transport=transport,
            headers={"User-Agent": "qabot-telegram"},
        )
        self._articles: tuple[float, list[ArticleInfo]] | None = None

    @classmethod
    def from_settings(cls, settings: TelegramSettings, token: str) -> ServeClient:
        """The bot's client; ``token`` only keys the conversation ids (``conversation_key``), it is never sent."""
        if not settings.answer_url:
            raise ValueError("telegram.answer_url is not set")
        return cls(settings.answer_url, settings.answer_timeout_s, settings.answer_retries, conversation_secret=token)

    # -- the chat handlers' interface (bot.telegram_chat.ChatAnswerer) --

    def conversation_id(self, chat_id: int) -> str:
        return conversation_key(self._conversation_secret, chat_id)

    async def ask(self, question: str, conversation_id: str | None, scope: frozenset[str] | None = None) -> ChatReply:
        """The workers' answer; ``InvalidQuestionError`` (their message) or ``WorkersUnavailableError``.

        The workers answer from their shared library (``GET /articles``); a chat's own scope cannot be sent.
        """
        if scope is not None:
            raise ValueError("the workers answer from their shared library; a chat scope cannot be forwarded")
        body: dict[str, Any] = {"question": question}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        response = await self._request("POST", "/ask", json=body)
        if response.status_code == 422:
            raise _refusal(response)
        data = _json(response, "/ask")
        try:
            return ChatReply(Answer.from_json_dict(data), data.get("reading"))
        except (KeyError, TypeError, ValueError) as error:
            raise WorkersUnavailableError(f"/ask answered something that is not an answer ({error!r})") from None

    async def reset(self, conversation_id: str) -> None:
        """Forget the conversation in the shared store (``/new``)."""
        response = await self._request("DELETE", f"/conversations/{conversation_id}")
        if response.status_code != 204:
            raise WorkersUnavailableError(f"DELETE /conversations answered {response.status_code}")

    async def articles(self) -> list[ArticleInfo]:
        """The shared library the workers answer from (cached for ``ARTICLES_TTL_S``)."""
        if self._articles is not None and time.monotonic() - self._articles[0] < ARTICLES_TTL_S:
            return self._articles[1]
        data = _json(await self._request("GET", "/articles"), "/articles")
        try:
            articles = [ArticleInfo(**item) for item in data["articles"]]
        except (KeyError, TypeError) as error:
            raise WorkersUnavailableError(f"/articles answered something unexpected ({error!r})") from None
        self._articles = (time.monotonic(), articles)
        return articles

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The response, retried on connection errors, 502 and 503; ``WorkersUnavailableError`` when it never came."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                response = await self._http.request(method, path, **options)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as error:
                problem = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                continue
            except httpx.HTTPError as error:  # a read timeout: the worker may have answered, do not ask twice
                raise WorkersUnavailableError(f"{method} {path} failed: {type(error).__name__} {error}") from None
            if response.status_code not in RETRY_STATUSES:
                if response.status_code >= 400 and response.status_code != 422:
                    reason = _error_text(response)
                    raise WorkersUnavailableError(f"{method} {path} answered {response.status_code}: {reason}")
                return response
            problem = f"HTTP {response.status_code}: {_error_text(response)}"
        raise WorkersUnavailableError(
            f"{method} {self.base_url}{path} failed {self.retries + 1} time(s); last: {' '.join(problem.split())}"
        )


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise WorkersUnavailableError(f"{what} did not answer JSON (HTTP {response.status_code})") from None
    if not isinstance(data, dict):
        raise WorkersUnavailableError(f"{what} answered a JSON {type(data).__name__}, not an object")
    return data


def _refusal(response: httpx.Response) -> InvalidQuestionError:
    """The workers' 422 ``{"error": message, "reason": word}`` as the error they raised, from one parse of the body.

    The reason word rebuilds the error's type (which rule refused the question), so the chat handlers word their
    reply as they do in-process; no reason gives the base type. A body that is not such an object did not come
    from the workers' question rules (a proxy's page, another API): ``WorkersUnavailableError`` saying what came,
    never a "can't answer that" with someone else's text in it.
    """
    data = _json(response, "/ask")
    message, reason = data.get("error"), data.get("reason")
    if not message:
        raise WorkersUnavailableError(f"/ask answered 422 without an error message: {str(data)[:200]}")
    return invalid_question(str(reason) if reason else None, str(message))


def _error_text(response: httpx.Response) -> str:
    """The server's ``{"error": "..."}`` line, or the start of whatever else came back (haproxy's HTML page)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    message = data.get("error") if isinstance(data, dict) else None
    return str(message) if message else " ".join(response.text.split())[:200]
