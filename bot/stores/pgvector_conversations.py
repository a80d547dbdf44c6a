"""Conversation state in PostgreSQL: the ``bot.conversation.ConversationStore`` that several workers share.

With several ``qabot serve`` workers behind a load balancer, a follow-up ("when was it founded?") may reach
another worker than the question it follows, so the turns cannot live in one worker's memory. One row per
conversation: its id, its last turns as JSONB, and ``updated_at``. A conversation idle longer than
``idle_seconds`` reads as empty (and expired rows are deleted as new turns are written), and only the last
``max_turns`` turns are kept, as the in-memory store does. Resolution itself stays in ``bot.conversation``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import TypeVar

from psycopg import Connection, Error, OperationalError
from psycopg.sql import SQL, Composed, Identifier

from bot.config import Settings
from bot.conversation import Turn
from bot.stores.pgvector_store import StoreUnavailableError, connect, reason

T = TypeVar("T")
_SCHEMA_LOCK = 0x71AB08  # two workers starting together must not race on CREATE TABLE


class PostgresConversationStore:
    """Thread-safe, bounded, idle-expiring conversation memory in a table of the shared store."""

    def __init__(self, settings: Settings, max_turns: int = 3, idle_seconds: float = 30 * 60) -> None:
        if max_turns < 1 or idle_seconds <= 0:
            raise ValueError("max_turns and idle_seconds must be positive")
        self.max_turns, self.idle_seconds = max_turns, idle_seconds
        options = settings.document_store
        self._table = Identifier(options.pg_schema, options.conversation_table)
        self._index = Identifier(f"{options.conversation_table}_updated")
        self._lock = threading.Lock()
        self._connection: Connection = connect(os.environ, autocommit=True)
        if options.create:
            self._run(self._create)

    def get(self, conversation_id: str) -> list[Turn]:
        def read(connection: Connection) -> list[Turn]:
            row = connection.execute(
                self._sql(
                    "SELECT turns FROM {table} WHERE conversation_id = %s "
                    "AND updated_at > now() - make_interval(secs => %s)"
                ),
                (conversation_id, self.idle_seconds),
            ).fetchone()
            return [_turn(item) for item in row[0]] if row else []

        return self._run(read)

    def append(self, conversation_id: str, turn: Turn) -> None:
        def write(connection: Connection) -> None:
            with connection.transaction():
                row = connection.execute(
                    self._sql(
                        "SELECT turns, updated_at > now() - make_interval(secs => %s) FROM {table} "
                        "WHERE conversation_id = %s FOR UPDATE"
                    ),
                    (self.idle_seconds, conversation_id),
                ).fetchone()
                turns = list(row[0]) if row and row[1] else []
                turns = [*turns, asdict(turn)][-self.max_turns :]
                connection.execute(
                    self._sql(
                        """INSERT INTO {table} (conversation_id, turns, updated_at) VALUES (%s, %s::jsonb, now())
                        ON CONFLICT (conversation_id) DO UPDATE SET turns = EXCLUDED.turns, updated_at = now()"""
                    ),
                    (conversation_id, json.dumps(turns, ensure_ascii=False)),
                )
                connection.execute(  # idle expiry: an indexed range delete of what nobody can read any more
                    self._sql("DELETE FROM {table} WHERE updated_at < now() - make_interval(secs => %s)"),
                    (self.idle_seconds,),
                )

        self._run(write)

    def reset(self, conversation_id: str) -> None:
        self._run(
            lambda connection: connection.execute(
                self._sql("DELETE FROM {table} WHERE conversation_id = %s"), (conversation_id,)
            )
        )

    def close(self) -> None:
        self._connection.close()

    def _create(self, connection: Connection) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            connection.execute(
                self._sql(
                    """CREATE TABLE IF NOT EXISTS {table} (conversation_id text PRIMARY KEY,
                    turns jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"""
                )
            )
            connection.execute(self._sql("CREATE INDEX IF NOT EXISTS {index} ON {table} (updated_at)"))

    def _run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` under the lock; a dropped connection (server restart, failover) is opened again
        once, so a worker outlives its database connection."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._connection.closed:
                        self._connection = connect(os.environ, autocommit=True)
                    return work(self._connection)
                except OperationalError as error:
                    self._connection.close()
                    if attempt == 2:
                        raise _failed(error) from None
                except Error as error:
                    raise _failed(error) from None
            raise AssertionError("unreachable")

    def _sql(self, template: str) -> Composed:
        return SQL(template).format(table=self._table, index=self._index)


def _failed(error: Error) -> StoreUnavailableError:
    return StoreUnavailableError(f"conversation state in PostgreSQL failed: {reason(error)}")


def _turn(item: dict) -> Turn:
    reference = item.get("reference")
    return Turn(item["question"], item["read_as"], item.get("answer"), tuple(reference) if reference else None)
