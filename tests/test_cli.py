"""The ``qabot`` command line, run as a real process where stdin/stdout/exit codes matter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import QUESTIONS_FILE, UNANSWERABLE_FILE

runner = CliRunner()


def _qabot(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from bot.cli import app; app()", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300)


def test_ask_json_lines_from_stdin(config_file: Path):
    questions = ["who backs Ahrar al-Sham?", "", "What is the capital of Australia?", "What does SOHR stand for?"]
    result = _qabot("ask", "--json", "-", "--config", str(config_file), stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == [q for q in questions if q]
    for line in lines:
        assert set(line) == {
            "question", "answer", "score", "context", "context_start", "context_end", "source", "alternatives"
        }  # fmt: skip
        assert isinstance(line["score"], float)
    assert lines[0]["answer"] == "Turkey, Saudi Arabia, and Qatar"
    assert lines[0]["source"]["article_id"] == "aleppo-siege-2016"
    assert lines[1]["answer"] is None and lines[1]["context"] is None
    assert "traceback" not in result.stderr.lower()


def test_ask_json_bad_line_reports_error_in_place(config_file: Path):
    stdin = "x" * 1500 + "\nwho backs Ahrar al-Sham?\n"
    result = _qabot("ask", "--json", "-", "--config", str(config_file), stdin=stdin)
    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "limit is 1,000" in first["error"]
    assert second["answer"] == "Turkey, Saudi Arabia, and Qatar"


def test_ask_human_output_marks_answer(config_file: Path):
    result = runner.invoke(app, ["ask", "who backs Ahrar al-Sham?", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "Turkey, Saudi Arabia, and Qatar" in result.output
    assert "[Turkey, Saudi Arabia, and Qatar]" in result.output  # highlighted in its sentence
    assert "confidence" in result.output


def test_ask_no_answer_is_plain(config_file: Path):
    result = runner.invoke(app, ["ask", "Who wrote Pride and Prejudice?", "--config", str(config_file)])
    assert result.exit_code == 0 and "The article doesn't say." in result.output


def test_empty_question_is_a_clean_error(config_file: Path):
    result = _qabot("ask", "   ", "--config", str(config_file))
    assert result.returncode == 1
    assert result.stderr.strip() == "error: the question is empty"


def test_missing_index_is_a_clean_error(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(f"index_dir: {tmp_path / 'nothing'}\n")
    result = _qabot("ask", "who?", "--config", str(config))
    assert result.returncode == 1
    assert "no index" in result.stderr and "qabot index" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_exits_2(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text("retrieval: {top_k: -3}\n")
    result = runner.invoke(app, ["ask", "who?", "--config", str(config)])
    assert result.exit_code == 2
    assert "retrieval.top_k" in result.output


def test_eval_prints_metrics_and_writes_report(config_file: Path, tmp_path: Path):
    report = tmp_path / "report.json"
    files = [str(QUESTIONS_FILE), str(UNANSWERABLE_FILE)]
    result = runner.invoke(app, ["eval", *files, "--config", str(config_file), "--report", str(report)])
    assert result.exit_code == 0, result.output
    labels = ("exact match", "F1", "no-answer accuracy", "retrieval recall@", "refused unanswerable", "AUROC", "ECE")
    for label in labels:
        assert label in result.output
    payload = json.loads(report.read_text())
    assert payload["summary"]["answerable"] == 51 and len(payload["questions"]) == 68 + 40
    assert payload["summary"]["unanswerable"] == 17 + 40


def test_index_is_idempotent_from_cli(config_file: Path):
    result = runner.invoke(app, ["index", "--config", str(config_file)])
    assert result.exit_code == 0 and "index up to date" in result.output


def test_chat_answers_until_empty_line(config_file: Path):
    result = _qabot("chat", "--config", str(config_file), stdin="who backs Ahrar al-Sham?\n\n")
    assert result.returncode == 0
    assert "Ask me about:" in result.stdout and "Turkey, Saudi Arabia, and Qatar" in result.stdout


def test_telegram_without_token_is_a_clean_error(config_file: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    result = runner.invoke(app, ["telegram", "--config", str(config_file)])
    assert result.exit_code == 1
    assert "TELEGRAM_BOT_TOKEN" in result.output
