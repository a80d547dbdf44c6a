"""Micro-batching of blocking, batched work for asyncio code: many ``await ask(x)`` -> one ``answer_many([...])``.

Why: the reader answers a batch of questions in little more time than one, and it is blocking (tens of ms of
CPU). When 16 chats ask at once, the bot should neither block its event loop nor queue 16 separate model
calls. Questions that arrive within ``window`` seconds of the first one waiting are gathered and answered by
one ``answer_many`` call on a small thread pool; each caller gets its own result. When a batch raises, each of
its questions is asked again on its own, so one bad question (one the reader cannot take, say) fails alone
instead of taking ten other chats' answers with it. While every worker is busy, new questions keep gathering
and go as one batch as soon as a worker is free, so batches grow with the load instead of the queue.

Generic on purpose (any ``Callable[[list[Q]], list[R]]``), so it can be tested with a plain function.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Q = TypeVar("Q")
R = TypeVar("R")


@dataclass
class _Ask(Generic[Q, R]):
    question: Q
    future: asyncio.Future[R]
    alone: bool = False  # its batch failed: asked again in a batch of its own


class AnswerBatcher(Generic[Q, R]):
    """Gathers concurrent ``ask`` calls into batches answered by ``answer_many`` off the event loop.

    Create it inside the running event loop that will call ``ask`` (e.g. in python-telegram-bot's
    ``post_init``) and ``close`` it when done.
    """

    def __init__(
        self,
        answer_many: Callable[[list[Q]], Sequence[R]],
        *,
        window: float,
        workers: int = 1,
        max_batch: int = 32,
    ) -> None:
        if window < 0 or workers < 1 or max_batch < 1:
            raise ValueError("window must be >= 0, workers and max_batch >= 1")
        self._answer_many = answer_many
        self._window = window
        self._workers = workers
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer-batch")
        self._pending: list[_Ask[Q, R]] = []
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def ask(self, question: Q) -> R:
        """Queue ``question`` for the next batch and wait for its own result (or its own exception)."""
        if self._closed:
            raise RuntimeError("the answer batcher is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append(_Ask(question, future))
        if len(self._pending) >= self._max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._on_window_end)
        return await future

    def close(self) -> None:
        """Fail questions still waiting for a batch and stop the threads (a running batch is not interrupted)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        for ask in pending:
            if not ask.future.done():
                ask.future.set_exception(RuntimeError("the answer batcher was closed before answering"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _on_window_end(self) -> None:
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        """Start batches while a worker is free; whatever is left waits for the next ``_deliver``."""
        self._pending = [ask for ask in self._pending if not ask.future.cancelled()]
        while self._pending and self._running < self._workers and not self._closed:
            size = 1
            if not self._pending[0].alone:
                while size < min(self._max_batch, len(self._pending)) and not self._pending[size].alone:
                    size += 1
            batch, self._pending = self._pending[:size], self._pending[size:]
            self._running += 1
            log.debug("answering a batch of %d", len(batch))
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(self._executor, self._answer_many, [ask.question for ask in batch])
            job.add_done_callback(lambda done, batch=batch: self._deliver(batch, done))
        if not self._pending and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _deliver(self, batch: list[_Ask[Q, R]], job: asyncio.Future[Sequence[R]]) -> None:
        """Route each result to its caller; after a batch raised, ask its questions again one by one (first in
        line, so they are not overtaken); a question that fails on its own gets its own exception."""
        self._running -= 1
        error = _batch_error(job, len(batch))
        if error is not None and len(batch) > 1 and not job.cancelled() and job.exception() is not None:
            retry = [_Ask(ask.question, ask.future, alone=True) for ask in batch if not ask.future.done()]
            log.debug("a batch of %d failed (%r): asking its questions one by one", len(batch), error)
            self._pending[:0] = retry
            self._flush()
            return
        for index, ask in enumerate(batch):
            if ask.future.done():  # the caller gave up (cancelled) meanwhile
                continue
            if error is not None:
                ask.future.set_exception(error)
            else:
                ask.future.set_result(job.result()[index])
        if error is not None:
            log.debug("a batch of %d failed: %r", len(batch), error)
        self._flush()


def _batch_error(job: asyncio.Future[Sequence[R]], expected: int) -> BaseException | None:
    if job.cancelled():
        return RuntimeError("the batch was cancelled")
    error = job.exception()
    if error is not None:
        return error
    if len(job.result()) != expected:
        return RuntimeError(f"answer_many returned {len(job.result())} results for {expected} questions")
    return None
