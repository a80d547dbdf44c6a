"""``qabot serve``: the HTTP API, a thin FastAPI layer over the one ``QAService`` (like the CLI and the bot).

    GET  /health     200 when the index answers (chunk count, fingerprint), 503 with the reason otherwise
    POST /ask        {"question": ..., "conversation_id": ...?} -> the ``qabot chat --json`` object (``ask --json``
                     plus ``interpreted_as``), answered from the shared library (no chat's own articles)
    POST /articles   a .txt body (optional front matter) or JSON {text, title, ...}; needs the admin token
    GET  /articles   the shared library: what /ask answers from (the Telegram bot's /help and /sources)
    DELETE /conversations/{id}   forget a conversation (the Telegram bot's /new); 204
    GET  /docs       OpenAPI documentation (served from the package, no CDN); /openapi.json the schema

Why these choices:
- Inference is blocking CPU work (tens of ms), so it never runs on the event loop: questions go through the
  same ``AnswerBatcher`` as the Telegram bot (concurrent requests share one ``answer_many`` call on a thread),
  and adding an article runs in Starlette's thread pool. ``/health`` keeps answering while the reader works.
- Each question is validated before it joins a batch (``QAService.validate_question``): one bad question must
  not fail the others in its batch, and it gets its own 422 with the service's message.
- Bodies are capped before the application reads them (413): a question is at most
  ``answers.max_question_chars`` characters, an article at most ``MAX_ARTICLE_BYTES``.
- The admin token comes only from the environment (``QABOT_ADMIN_TOKEN``), is compared in constant time, and is
  never logged; without it ``POST /articles`` is switched off (403) rather than open.
- uvicorn stops gracefully on SIGTERM/SIGINT: it stops accepting, lets requests in flight finish (at most
  ``GRACEFUL_SHUTDOWN_S``), then closes the batcher.

``conversation_id`` makes a question the next turn of that conversation: follow-ups ("when was it founded?") are
resolved by ``bot.conversation`` exactly as in the Telegram bot. The turns live in the conversation store
``bot.stores.conversation_store`` chooses: PostgreSQL with the pgvector backend, so that any worker behind a load
balancer can answer the follow-up; this process's memory with FAISS. The service itself stays stateless.
A conversation id is a capability: whoever knows it may continue it, so whoever knows it may also reset it
(``DELETE /conversations/{id}`` needs no admin token). The Telegram bot in front of the workers
(``bot.serve_client``) therefore sends ids derived from its token, not guessable chat ids.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

import bot
from bot.answer_batcher import AnswerBatcher
from bot.articles import MAX_ARTICLE_BYTES, MAX_ARTICLE_ID_CHARS, article_id_from_text, parse_article
from bot.conversation import ConversationStore, Resolved, resolved_batcher, take_turn, turn_json_line
from bot.errors import ArticleError, InvalidQuestionError, QabotError
from bot.ingest.library import load_library

if TYPE_CHECKING:  # the service pulls in the model libraries
    from bot.answer import Answer
    from bot.answering import ArticleScope, QAService
    from bot.articles import ArticleInfo

log = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "QABOT_ADMIN_TOKEN"
GRACEFUL_SHUTDOWN_S = 30
# Questions arriving this close together share one reader batch; one answering thread, as the service runs
# one pipeline at a time anyway (see QAService) and the second core is the reader's.
BATCH_WINDOW_S = 0.01
ANSWER_WORKERS = 1
# JSON escaping can turn one character into six bytes (\uXXXX); the rest of an /ask body is tiny.
ASK_BODY_OVERHEAD = 4096
# An article travels as text/plain (its own size) or inside JSON (escaped newlines, quotes, metadata).
ARTICLE_BODY_LIMIT = 2 * MAX_ARTICLE_BYTES
ARTICLE_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

_ASK_EXAMPLE = {
    "question": "who backs Ahrar al-Sham?",
    "answer": "Turkey, Saudi Arabia, and Qatar",
    "score": 0.93,
    "context": "It is backed by Turkey, Saudi Arabia, and Qatar.",
    "context_start": 16,
    "context_end": 47,
    "source": {"article_id": "aleppo-siege-2016", "title": "…", "start": 1234, "end": 1265},
    "alternatives": [],
    "interpreted_as": None,
    "reading": None,
}


class AskRequest(BaseModel):
    """One question; the reply is exactly what ``qabot chat --json`` writes for it."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question (validated like everywhere else: not empty, not over the limit).")
    conversation_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The conversation this question continues: a follow-up such as \"when was it founded?\" is "
        "read against its previous turn (any worker can answer it).",
    )


class ArticleRequest(BaseModel):
    """An article as JSON; the same rules as a .txt file with front matter (the text is cleaned the same way)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="The article body.")
    title: str = Field(min_length=1, max_length=500)
    article_id: str | None = Field(
        None,
        pattern=ARTICLE_ID_PATTERN,
        max_length=MAX_ARTICLE_ID_CHARS,
        description="Lower-case letters, digits and dashes; derived from the title when left out.",
    )
    source: str | None = Field(None, max_length=500)
    date: str | None = Field(None, max_length=100)
    url: str | None = Field(None, max_length=2000)

    @field_validator("title", "source", "date", "url")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError("must be one line")
        return value

    def as_file_text(self) -> str:
        """The article as the .txt file that ``qabot index add`` would read: front matter, then the body."""
        meta = {"title": self.title, "source": self.source, "date": self.date, "url": self.url}
        header = "".join(f"{key}: {value.strip()}\n" for key, value in meta.items() if value and value.strip())
        return f"---\n{header}---\n{self.text}"


# -- request size limit -------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    """Pure ASGI middleware: a body over the path's limit gets 413 before the application sees any of it.

    The declared Content-Length is checked first; a chunked body is read up to the limit and then replayed
    to the application, so a client cannot stream past the limit by leaving the length out.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"the request body is over the limit of {limit:,} bytes"}, status_code=413)


# -- the application ----------------------------------------------------------------------------------------


def create_app(
    service: QAService, admin_token: str | None = None, conversations: ConversationStore | None = None
) -> FastAPI:
    """The FastAPI application around ``service``; ``admin_token`` None switches ``POST /articles`` off.

    ``conversations`` None: the store the configured backend implies (``bot.stores.conversation_store``).
    """
    from bot.stores import conversation_store

    settings = service.settings
    ask_body_limit = ASK_BODY_OVERHEAD + 6 * settings.answers.max_question_chars
    add_lock = threading.Lock()  # one article added at a time: each add updates the index (incrementally)
    batcher: AnswerBatcher[tuple[Resolved, ArticleScope], Answer] | None = None
    if conversations is None:
        conversations = conversation_store(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal batcher
        batcher = resolved_batcher(service, window=BATCH_WINDOW_S, workers=ANSWER_WORKERS)
        try:
            yield
        finally:
            batcher.close()

    app = FastAPIOffline(
        title="qabot",
        version=bot.__version__,
        summary="Answers questions about news articles (extractive: the answer is a span of an article).",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodySizeLimit, limit_for=lambda path: ARTICLE_BODY_LIMIT if path == "/articles" else ask_body_limit
    )
    _install_error_handlers(app)
    bearer = HTTPBearer(auto_error=False, description=f"The admin token ({ADMIN_TOKEN_ENV} of the server).")

    # A default value, not Annotated: with postponed annotations FastAPI could not see the local ``bearer``.
    def require_admin(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:  # noqa: B008
        if not admin_token:
            raise HTTPException(403, f"adding articles is switched off: start the server with {ADMIN_TOKEN_ENV} set")
        if credentials is None:
            raise HTTPException(
                401, "this needs the admin token: Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
            )
        if not hmac.compare_digest(credentials.credentials.encode(), admin_token.encode()):
            raise HTTPException(403, "wrong admin token")

    @app.get("/health", summary="200 when the index answers, 503 with the reason otherwise")
    async def health() -> JSONResponse:
        try:
            chunks = await run_in_threadpool(service.check_index)
        except QabotError as error:
            return JSONResponse({"status": "unavailable", "error": str(error)}, status_code=503)
        articles, fingerprint = len(service.articles()), service.index_fingerprint
        body = {"status": "ok", "articles": articles, "chunks": chunks, "index": fingerprint}
        if problem := service.index_problem:  # still answering, from the index in memory: healthy but stale
            body |= {"status": "stale", "error": problem}
        return JSONResponse(body)

    @app.post(
        "/ask",
        summary="Answer a question (the `qabot chat --json` object: `ask --json` plus `interpreted_as`)",
        responses={
            200: {
                "description": "The answer; `answer` is null when the articles don't say.",
                "content": {"application/json": {"example": _ASK_EXAMPLE}},
            },
            422: {
                "description": 'A bad question or body: `{"error": "..."}`; a refused question also says which '
                'rule refused it: `"reason"` is `empty`, `too_long` or `not_text`'
            },
            503: {"description": "The index cannot be read."},
        },
    )
    async def ask(body: AskRequest) -> Response:
        assert batcher is not None, "the lifespan creates the batcher before the first request"
        conversation_id = body.conversation_id
        answer, resolved = await take_turn(
            body.question,
            validate=service.validate_question,  # before the batch: a bad question fails alone (422, its handler)
            store=conversations,
            conversation_id=None if conversation_id is None else http_conversation_id(conversation_id),
            scope=await run_in_threadpool(shared_scope, service),  # reads the ledger
            answer=lambda resolved, scope: batcher.ask((resolved, scope)),
        )
        return Response(turn_json_line(answer, resolved), media_type="application/json")

    @app.delete(
        "/conversations/{conversation_id}",
        status_code=204,
        summary="Forget a conversation: its next question starts afresh (the Telegram bot's /new)",
        responses={204: {"description": "Forgotten (also when there was nothing to forget)."}},
    )
    async def reset_conversation(
        conversation_id: Annotated[str, FastAPIPath(min_length=1, max_length=200)],
    ) -> Response:
        await asyncio.to_thread(conversations.reset, http_conversation_id(conversation_id))
        return Response(status_code=204)

    @app.get("/articles", summary="The shared library: the articles /ask answers from")
    async def list_articles() -> JSONResponse:
        articles = await run_in_threadpool(shared_articles, service)  # reads the ledger
        return JSONResponse({"articles": [asdict(article) for article in articles]})

    @app.post(
        "/articles",
        status_code=201,
        dependencies=[Depends(require_admin)],
        summary="Add an article and re-index (admin token needed)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "text/plain": {"schema": {"type": "string"}, "example": "---\ntitle: A title\n---\nThe body."},
                    "application/json": {"schema": ArticleRequest.model_json_schema()},
                },
            }
        },
        responses={
            401: {"description": "No admin token."},
            403: {"description": "Wrong admin token, or adding is switched off."},
            409: {"description": "Another article already has this id."},
            413: {"description": "The body or the article is too large."},
            415: {"description": "Neither text/plain nor application/json."},
            422: {"description": "Not an article (no title or no text after cleaning, bad field)."},
        },
    )
    async def add_article(
        request: Request,
        article_id: Annotated[
            str | None,
            Query(pattern=ARTICLE_ID_PATTERN, max_length=MAX_ARTICLE_ID_CHARS, description="text/plain: the id"),
        ] = None,
    ) -> JSONResponse:
        text, json_id = _article_text(request.headers.get("content-type", ""), await request.body())
        if len(text.encode("utf-8")) > MAX_ARTICLE_BYTES:
            return _error(413, f"the article is over the limit of {MAX_ARTICLE_BYTES:,} bytes")
        try:
            title = parse_article(text, "upload").info.title
            chosen_id = json_id or article_id or _id_from_title(title)
        except ArticleError as error:
            return _error(422, str(error).removeprefix("upload: "))
        return await run_in_threadpool(_add, service, add_lock, chosen_id, text)

    return app


def http_conversation_id(conversation_id: str) -> str:
    """The store key of a client's conversation: ``http:`` keeps it apart from Telegram's ``telegram:<chat id>``
    (one store under the pgvector backend), so a client can never read or continue a Telegram chat."""
    return f"http:{conversation_id}"


def shared_articles(service: QAService) -> list[ArticleInfo]:
    """The articles of the shared library (never a Telegram chat's own), in index order. Blocking: reads the ledger."""
    return load_library(service.settings).visible(service.articles(), None)


def shared_scope(service: QAService) -> ArticleScope:
    """The articles an HTTP question may be answered from: the shared library, never a Telegram chat's own
    articles (``bot.ingest.library``); None (no filter) while no article is private. Blocking: reads the ledger."""
    return load_library(service.settings).scope(service.articles(), None)


def _article_text(content_type: str, body: bytes) -> tuple[str, str | None]:
    """The article's file text and the id given in a JSON body (``None``: not given)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            payload = ArticleRequest.model_validate_json(body)
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False)) from None
        return payload.as_file_text(), payload.article_id
    if kind not in ("text/plain", ""):
        raise HTTPException(415, f"send the article as text/plain or application/json, not {kind}")
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError as error:
        raise HTTPException(422, f"the article is not UTF-8 text ({error.reason} at byte {error.start})") from None


def _id_from_title(title: str) -> str:
    """The one article-id rule (``bot.articles.article_id_from_text``) applied to the title."""
    slug = article_id_from_text(title)
    if not slug:
        raise ArticleError("cannot derive an article id from the title; pass article_id")
    return slug


def _add(service: QAService, lock: threading.Lock, article_id: str, text: str) -> JSONResponse:
    """Write the article as ``<id>.txt`` and add it the way ``qabot index add`` does (runs in a thread)."""
    from bot.stores import add_article

    settings = service.settings
    data = text.encode("utf-8")
    with lock:
        existing = settings.resolve(settings.articles_dir) / f"{article_id}.txt"
        if existing.exists() and existing.read_bytes() != data:
            return _error(409, f"an article with id {article_id!r} already exists; choose another article_id")
        with tempfile.TemporaryDirectory(prefix="qabot-upload-") as folder:
            path = Path(folder) / f"{article_id}.txt"
            path.write_bytes(data)
            try:
                info, result = add_article(settings, path, progress_bar=False)
            except ArticleError as error:
                return _error(422, str(error))
    return JSONResponse(
        {
            "article_id": info.article_id,
            "title": info.title,
            "articles": result.articles,
            "chunks": result.documents,
            "index": result.fingerprint,
        },
        status_code=201,
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _question_refused(error: InvalidQuestionError) -> JSONResponse:
    """422 with the rule that refused the question as a word (``reason``: empty, too_long, …) next to the message,
    so a client (the Telegram bot in front of the workers) can tell the kinds apart without reading the text."""
    return JSONResponse({"error": str(error), "reason": error.reason}, status_code=422)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error is ``{"error": "one line for a person"}`` (validation errors also keep their ``detail``)."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = list(error.errors())
        if any(problem.get("type") == "json_invalid" for problem in problems):
            reason = next(p for p in problems if p.get("type") == "json_invalid").get("ctx", {}).get("error", "")
            return _error(400, f"the body is not valid JSON ({reason})" if reason else "the body is not valid JSON")
        message = "; ".join(_describe(problem) for problem in problems)
        detail = json.loads(json.dumps(problems, default=str))
        return JSONResponse({"error": message, "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(InvalidQuestionError)
    async def invalid_question(_: Request, error: InvalidQuestionError) -> JSONResponse:
        return _question_refused(error)

    @app.exception_handler(QabotError)
    async def unavailable(_: Request, error: QabotError) -> JSONResponse:
        log.warning("answering failed: %s", error)
        return _error(503, str(error))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> JSONResponse:
        # Starlette logs the traceback; the client gets JSON like every other error, without internals.
        return _error(500, "internal error; the server log has the details")


def _describe(problem: dict[str, Any]) -> str:
    location = [str(part) for part in problem.get("loc", ()) if part != "body"]
    return f"{'.'.join(location)}: {problem.get('msg', 'invalid')}" if location else str(problem.get("msg", "invalid"))


# -- running ------------------------------------------------------------------------------------------------


def listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket first, so a taken port is one clear error before any model is loaded."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


def run_server(app: FastAPI, sock: socket.socket) -> None:
    """Serve until SIGTERM/SIGINT, then finish the requests in flight (uvicorn's graceful shutdown)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
        log_level="info",
    )
    uvicorn.Server(config).run(sockets=[sock])
