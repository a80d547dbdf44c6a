"""``qabot chat``: a conversation in the terminal (prompt_toolkit) or as JSON lines (``--json``).

One ``Conversation`` per session remembers the last turns so that "who backs it?" follows "what is Ahrar
al-Sham?"; the answering itself is the one ``QAService``. The interactive loop is prompt_toolkit's
``PromptSession`` (history with Up/Down, line editing, Ctrl-C cancels the line, Ctrl-D quits), so tests drive
it with prompt_toolkit's own pipe input instead of a terminal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bot.conversation import (
    InMemoryConversationStore,
    Resolved,
    answer_resolved,
    describe,
    take_turn,
    turn_json_line,
)
from bot.errors import InvalidQuestionError
from bot.rendering import render_terminal

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from bot.answer import Answer
    from bot.answering import ArticleScope, QAService

SESSION_ID = "cli"
HELP_TEXT = """Ask a question about the articles in plain words; follow-ups such as "who backs it?" use the
previous answer. Commands:
  help      this text
  sources   the articles I know
  new       forget the conversation so far (a new topic)
  quit      leave (Ctrl-D does the same; Ctrl-C clears the line)"""
COMMANDS = ("help", "sources", "new", "quit", "exit")


class Conversation:
    """A question in, an answer out, with the conversation so far taken into account.

    A turn is ``bot.conversation.take_turn``, the one implementation the Telegram bot and the HTTP API await
    too, so it is a coroutine. The conversation runs its turns on one event loop of its own (an
    ``asyncio.Runner``) for as long as it lives, rather than a new loop and thread pool per question; ``close()``
    (or leaving a ``with`` block) closes it. The loop is not made the thread's current loop, so prompt_toolkit's
    prompt between questions runs on its own loop, as it would without a conversation.
    """

    def __init__(self, service: QAService, conversation_id: str = SESSION_ID, store: Any = None) -> None:
        self.service = service
        self.conversation_id = conversation_id
        self.store = store if store is not None else InMemoryConversationStore(max_conversations=1)
        self._runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)  # the loop starts with the first turn

    def ask(self, question: str) -> tuple[Answer, Resolved]:
        """Answer ``question`` (validated first: InvalidQuestionError changes nothing) and remember the turn."""

        async def answer_one(resolved: Resolved, scope: ArticleScope) -> Answer:
            return answer_resolved(self.service, [resolved], [scope])[0]

        turn = take_turn(
            question,
            validate=self.service.validate_question,
            store=self.store,
            conversation_id=self.conversation_id,
            scope=None,  # the terminal is the operator's: every article
            answer=answer_one,
        )
        try:
            return self._runner.run(turn)
        finally:
            turn.close()  # a no-op once it ran; a turn refused by a closed conversation is not left "never awaited"

    def reset(self) -> None:
        self.store.reset(self.conversation_id)

    def close(self) -> None:
        """Close the conversation's event loop (and its threads); ``ask`` fails after this. Safe to call twice."""
        self._runner.close()

    def __enter__(self) -> Conversation:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def run_json(conversation: Conversation, lines: Iterable[str], write: Callable[[str], None]) -> int:
    """Every non-blank line is the next question of one conversation; returns how many lines were invalid."""
    failures = 0
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        try:
            answer, resolved = conversation.ask(line)
        except InvalidQuestionError as error:
            failures += 1
            write(json.dumps({"question": line[:200], "error": str(error)}, ensure_ascii=False))
            continue
        write(turn_json_line(answer, resolved))
    return failures


def sources_text(service: QAService) -> str:
    articles = service.articles()
    if not articles:
        return "No article is indexed yet."
    return "\n".join(
        "• " + article.title + "".join(f" — {part}" for part in (article.source, article.date, article.url) if part)
        for article in articles
    )


def run_interactive(
    conversation: Conversation,
    session: PromptSession,
    write: Callable[[str], None],
    color: bool = False,
) -> None:
    """The chat loop: prompt, answer or run a command, until ``quit`` or Ctrl-D."""
    titles = ", ".join(article.title for article in conversation.service.articles())
    write(f"Ask me about: {titles}\n(type help for the commands; Ctrl-D or quit to leave)")
    while True:
        try:
            line = session.prompt("? ")
        except KeyboardInterrupt:
            continue  # Ctrl-C: the line is dropped, the chat goes on
        except EOFError:
            return
        text = line.strip()
        command = text.casefold()
        if not text:
            continue
        if command in ("quit", "exit"):
            return
        if command == "help":
            write(HELP_TEXT)
        elif command == "sources":
            write(sources_text(conversation.service))
        elif command == "new":
            conversation.reset()
            write("(new conversation: earlier questions are forgotten)")
        else:
            try:
                answer, resolved = conversation.ask(text)
            except InvalidQuestionError as error:
                write(f"error: {error}")
                continue
            note = describe(resolved)
            write((f"({note})\n" if note else "") + render_terminal(answer, color=color))


def prompt_session(**kwargs: Any) -> PromptSession:
    """A prompt with in-memory history (Up/Down) and command completion; kwargs go to ``PromptSession``."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import InMemoryHistory

    return PromptSession(history=InMemoryHistory(), completer=WordCompleter(list(COMMANDS)), **kwargs)
