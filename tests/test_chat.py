"""``qabot chat``: the prompt_toolkit loop driven through prompt_toolkit's pipe input (real key presses: Enter,
Ctrl-C, Ctrl-D, Up) and ``chat --json`` as a real subprocess. The service is the session's real one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from bot.answer import Answer
from bot.chat import HELP_TEXT, Conversation, prompt_session, run_interactive
from bot.rendering import NO_ANSWER_TEXT, render_terminal

CTRL_C, CTRL_D, UP = "\x03", "\x04", "\x1b[A"


def chat(qa_service, *keys: str) -> list[str]:
    """Run the interactive chat on ``keys`` (typed one chunk at a time, then Ctrl-D) and return what it wrote.

    The chunks go in from a thread with a pause between them, as a person types: an escape sequence (Up) that
    arrives glued to the previous line's Enter is read as typeahead of a prompt that no longer exists. After a
    line the typist waits for its answer to be written (at most 2 s: empty lines and commands may write nothing),
    so that a slow answer on a busy machine does not swallow the next key.
    """
    written: list[str] = []
    with create_pipe_input() as pipe:

        def type_keys() -> None:
            for chunk in (*keys, CTRL_D):
                before = len(written)
                pipe.send_text(chunk)
                if chunk.endswith("\r"):  # a line: let its answer be written (a busy machine is slow) before typing on
                    deadline = time.monotonic() + 2.0
                    while len(written) == before and time.monotonic() < deadline:
                        time.sleep(0.05)
                time.sleep(0.3)

        typist = threading.Thread(target=type_keys)
        typist.start()
        session = prompt_session(input=pipe, output=DummyOutput())
        with Conversation(qa_service) as conversation:
            run_interactive(conversation, session, written.append)
        typist.join()
    return written


def test_commands_empty_lines_and_quit(qa_service):
    written = chat(qa_service, "help\r", "\r", "   \r", "sources\r", "quit\r", "Who backs Ahrar al-Sham?\r")
    assert written[1] == HELP_TEXT
    assert "Syria's opposition is on the verge" in written[2] and "Business Insider" in written[2]
    assert len(written) == 3  # empty lines ask nothing; nothing is answered after quit


def test_follow_up_is_read_with_the_previous_turn_and_new_forgets_it(qa_service):
    first = "Who characterises Ahrar al-Sham as a terror organisation?\r"
    written = chat(qa_service, first, "who backs it?\r", "new\r", "who backs it?\r")
    assert "Russia and the Syrian government" in written[1]
    assert written[2].startswith("(reading ‘it’ as Ahrar al-Sham)")
    assert "Turkey, Saudi Arabia, and Qatar" in written[2]
    assert "new conversation" in written[3]
    assert "reading" not in written[4]  # no context any more: "it" stays "it"


def test_up_recalls_the_previous_question(qa_service):
    written = chat(qa_service, "What does SOHR stand for?\r", UP, "\r")
    assert len(written) == 3
    assert all("Syrian Observatory for Human Rights" in text for text in written[1:])


def test_ctrl_c_cancels_the_line_and_ctrl_d_quits(qa_service):
    keys = ("half a quest", CTRL_C, "What does SOHR stand for?\r", CTRL_D, "Who backs Ahrar al-Sham?\r")
    written = chat(qa_service, *keys)
    assert len(written) == 2  # the cancelled line asked nothing; Ctrl-D ended the chat before the last line
    assert "Syrian Observatory for Human Rights" in written[1] and "half" not in written[1]


class LoopWatchingService:
    """The session's real service, noting the event loop each question is validated on (inside the turn)."""

    def __init__(self, service) -> None:
        self._service, self.loops = service, []

    def validate_question(self, question: str) -> str:
        self.loops.append(asyncio.get_running_loop())  # kept: a closed loop's id cannot be reused by the next one
        return self._service.validate_question(question)

    def __getattr__(self, name: str):
        return getattr(self._service, name)


def test_one_event_loop_serves_the_whole_conversation_and_closes_with_it(qa_service):
    service = LoopWatchingService(qa_service)
    questions = ["Who backs Ahrar al-Sham?", "who characterises it as a terror organisation?", "What is SOHR?"]
    with Conversation(service) as conversation:
        answers = [conversation.ask(question)[0] for question in questions]
        assert not service.loops[0].is_closed()
    assert answers[0].text == "Turkey, Saudi Arabia, and Qatar"
    assert len(service.loops) == len(questions) and all(loop is service.loops[0] for loop in service.loops)
    assert service.loops[0].is_closed()  # closed with the conversation
    with pytest.raises(RuntimeError):
        conversation.ask(questions[0])
    conversation.close()  # a second close is harmless


def test_refusal_says_how_sure_it_is_that_the_article_does_not_say():
    text = render_terminal(Answer(question="q", text=None, score=0.93))
    assert text == f"{NO_ANSWER_TEXT} (93% sure it doesn't)"


def test_chat_json_reads_one_conversation(config_file: Path):
    stdin = "Who backs Ahrar al-Sham?\n\nWhat is it a coalition of?\n" + "x" * 1500 + "\nWhat does SOHR stand for?\n"
    command = [sys.executable, "-c", "from bot.cli import app; app()", "chat", "--json", "--config", str(config_file)]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr  # one invalid line
    first, second, bad, last = (json.loads(line) for line in result.stdout.splitlines())
    assert set(first) == {
        "question", "answer", "score", "context", "context_start", "context_end", "source", "alternatives",
        "interpreted_as", "reading",
    }  # fmt: skip
    assert first["answer"] == "Turkey, Saudi Arabia, and Qatar" and first["interpreted_as"] is None
    assert second["question"] == "What is it a coalition of?"
    assert second["interpreted_as"] == "What is Ahrar al-Sham a coalition of?"
    assert second["reading"] == "reading ‘it’ as Ahrar al-Sham" and first["reading"] is None
    assert "Islamist and Salafist" in second["answer"]
    assert "limit is 1,000" in bad["error"]
    assert last["answer"] == "Syrian Observatory for Human Rights" and last["interpreted_as"] is None
    assert "traceback" not in result.stderr.lower()
