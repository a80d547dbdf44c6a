"""Hostile input found by the probe in issue 9, replayed against the real program: every expected failure is one
``error:`` line and a documented exit code (1 failure, 2 bad config or usage), never a traceback.

The ``qabot`` runs are real processes (stdin bytes, argv bytes, exit codes and stderr are what is tested).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from bot.answering import QAService
from bot.cli import app
from bot.config import PROJECT_ROOT, with_overrides
from bot.errors import InvalidQuestionError, ModelLoadError
from bot.question_rules import max_question_tokens
from tests.conftest import SEED_ARTICLE

runner = CliRunner()

FLAGSHIP = "who backs Ahrar al-Sham?"
FLAGSHIP_ANSWER = "Turkey, Saudi Arabia, and Qatar"
# 998 characters (under the 1,000-character limit) but ~500 reader tokens: over the reader's window.
TOKEN_HEAVY_QUESTION = "a " * 499
SECRET_TOKEN = "987654:hostile-SECRET-token_never-print"


def qabot(*args: str | bytes, stdin: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``qabot ARGS`` as a user runs it, bytes in and out."""
    command = [sys.executable, "-c", "from bot.cli import app; app()", *args]
    environ = {key: value for key, value in os.environ.items() if key != "QABOT_CONFIG"}
    return subprocess.run(
        command, input=stdin, capture_output=True, timeout=300, cwd=PROJECT_ROOT, env={**environ, **(env or {})}
    )


def assert_one_error_line(result: subprocess.CompletedProcess, code: int, *phrases: str) -> str:
    stderr = result.stderr.decode("utf-8", "replace")
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert result.returncode == code, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


# -- 1. questions are limited in the reader's tokens ----------------------------------------------------


def test_token_heavy_question_is_refused_by_the_service(qa_service: QAService):
    limit = max_question_tokens(qa_service.settings.reader)
    assert len(TOKEN_HEAVY_QUESTION.strip()) <= qa_service.settings.answers.max_question_chars
    cache_before = dict(qa_service._cache)
    with pytest.raises(InvalidQuestionError, match=f"limit is {limit}"):
        qa_service.answer(TOKEN_HEAVY_QUESTION)
    assert dict(qa_service._cache) == cache_before


def test_longest_allowed_question_fits_the_reader(qa_service: QAService):
    """The limit is safe: a question of exactly the limit is read (over every passage), not refused or crashed."""
    limit = max_question_tokens(qa_service.settings.reader)
    question = "who backs " + "a " * (limit - 3) + "?"
    assert qa_service._pipeline.question_tokens(question) == limit
    answer, passages = qa_service.answer_with_passages(question)
    assert answer.question == " ".join(question.split()) and passages
    with pytest.raises(InvalidQuestionError, match="too long"):
        qa_service.validate_question(question + " a")


def test_ask_json_stream_goes_on_after_bad_bytes_and_a_token_heavy_line(config_file: Path):
    """Items 1 and 2 in one stream: undecodable bytes are read as U+FFFD, a line over the reader's window is an
    error object in its place, and the stream goes on to the end."""
    stdin = b"\xff\nwho backs Ahrar\xff al-Sham?\n" + f"{TOKEN_HEAVY_QUESTION}\n{FLAGSHIP}\n".encode()
    result = qabot("ask", "--json", "-", "--config", str(config_file), stdin=stdin)
    assert result.returncode == 1 and result.stderr == b"", result.stderr
    lines = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [line["question"] for line in lines] == [
        "\ufffd",
        "who backs Ahrar\ufffd al-Sham?",
        TOKEN_HEAVY_QUESTION[:200],
        FLAGSHIP,
    ]
    assert "error" not in lines[0] and "error" not in lines[1]
    assert "too long" in lines[2]["error"] and "limit is" in lines[2]["error"]
    assert lines[3]["answer"] == FLAGSHIP_ANSWER


def test_token_heavy_question_as_argument_is_one_error_line(config_file: Path):
    result = runner.invoke(app, ["ask", TOKEN_HEAVY_QUESTION, "--config", str(config_file)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: the question is too long") and "limit is" in result.stderr


def test_undecodable_argv_bytes_are_read_as_replacement_characters(config_file: Path):
    """Python hands undecodable argv bytes over as lone surrogates (b"\\xff" -> "\\udcff")."""
    result = runner.invoke(app, ["ask", "--json", "\udcff", "--config", str(config_file)])
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout)["question"] == "\ufffd"


def test_lone_surrogates_reach_the_service_as_replacement_characters(qa_service: QAService):
    assert qa_service.answer("who backs Ahrar\udcff al-Sham?\ud800").question == "who backs Ahrar\ufffd al-Sham?\ufffd"


# -- 4. broken models, index and start-up ---------------------------------------------------------------


def _reader_copy(tmp_path: Path, broken: str, content: bytes) -> Path:
    """The shipped reader folder as symlinks, with one file replaced by ``content``."""
    source = PROJECT_ROOT / "models" / "reader"
    folder = tmp_path / "reader"
    for path in source.rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if str(path.relative_to(source)) == broken:
                target.write_bytes(content)
            else:
                target.symlink_to(path)
    return folder


@pytest.mark.parametrize(
    ("broken", "says"),
    [("onnx/model_int8.onnx", "cannot load the ONNX model"), ("tokenizer.json", "cannot load the tokenizer")],
)
def test_corrupt_reader_files_are_a_model_load_error(service_settings, tmp_path: Path, broken: str, says: str):
    reader = _reader_copy(tmp_path, broken, b"\x08\x07 not a model {")
    settings = with_overrides(service_settings, {"reader.model": str(reader)})
    with pytest.raises(ModelLoadError, match=says) as raised:
        QAService.from_settings(settings)
    assert broken.split("/")[-1] in str(raised.value) and "\n" not in str(raised.value)


def test_corrupt_embedder_tokenizer_is_a_model_load_error(service_settings, tmp_path: Path):
    embedder = tmp_path / "embedder"
    embedder.mkdir()
    (embedder / "model_int8.onnx").symlink_to(PROJECT_ROOT / "models" / "embedder" / "model_int8.onnx")
    (embedder / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(ModelLoadError, match=r"cannot load the tokenizer .*tokenizer\.json") as raised:
        QAService.from_settings(with_overrides(service_settings, {"embedder.onnx_dir": str(embedder)}))
    assert "\n" not in str(raised.value)


def test_model_load_errors_are_one_error_line(service_settings, tmp_path: Path):
    """How the CLI shows any of the errors above: one line, exit 1."""
    reader = _reader_copy(tmp_path, "onnx/model_int8.onnx", b"")
    config = tmp_path / "config.yaml"
    config.write_text(f"index_dir: {service_settings.index_dir}\nreader: {{model: {reader}}}\n")
    result = runner.invoke(app, ["ask", FLAGSHIP, "--config", str(config)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: cannot load the ONNX model")


def test_index_dir_that_cannot_be_created_is_one_error_line(tmp_path: Path):
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / SEED_ARTICLE.name).symlink_to(SEED_ARTICLE)
    (tmp_path / "a-file").write_text("not a folder")
    config = tmp_path / "config.yaml"
    config.write_text(f"articles_dir: {articles}\nindex_dir: {tmp_path / 'a-file' / 'index'}\n")
    result = runner.invoke(app, ["index", "--config", str(config)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("error: cannot ") and "a-file" in result.stderr


def test_binary_current_file_is_an_index_error_and_index_repairs_it(service_settings, tmp_path: Path):
    import shutil

    from bot.errors import IndexCorruptError
    from bot.indexing import build_index, load_index

    index = tmp_path / "index"
    shutil.copytree(service_settings.index_dir, index)
    (index / "CURRENT").write_bytes(b"\xff\xfe\x00garbage\x80")
    settings = with_overrides(service_settings, {"index_dir": index})
    with pytest.raises(IndexCorruptError, match=r"CURRENT.*rebuild it with `qabot index`"):
        load_index(settings)
    assert build_index(settings, progress_bar=False).built
    assert load_index(settings).manifest["document_count"] > 0


def test_webhook_mode_without_url_is_a_config_error(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text("telegram: {mode: webhook}\n")
    result = qabot("telegram", "--config", str(config), env={"TELEGRAM_BOT_TOKEN": SECRET_TOKEN})
    assert_one_error_line(result, 2, "telegram", "webhook_url")


def test_unreachable_bot_api_is_one_error_line(config_file: Path):
    environ = {"TELEGRAM_BOT_TOKEN": SECRET_TOKEN, "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot"}
    result = qabot("telegram", "--config", str(config_file), env=environ)
    assert_one_error_line(result, 1, "cannot reach the Bot API at 127.0.0.1:9")
    assert SECRET_TOKEN.encode() not in result.stdout + result.stderr


# -- 5. a token the Bot API refuses ---------------------------------------------------------------------


class _UnauthorizedBotApi(http.server.BaseHTTPRequestHandler):
    """What api.telegram.org answers for a revoked or mistyped token: 401 on every method."""

    requests: ClassVar[list[str]] = []

    def do_POST(self) -> None:  # python-telegram-bot posts every method
        _UnauthorizedBotApi.requests.append(self.path)
        body = json.dumps({"ok": False, "error_code": 401, "description": "Unauthorized"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unauthorized_bot_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _UnauthorizedBotApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bot"
    finally:
        server.shutdown()
        server.server_close()


def test_refused_token_is_reported_without_the_token_before_the_model_loads(unauthorized_bot_api: str, tmp_path):
    # No index at all: if the model and index were loaded first, the error would be "no index".
    config = tmp_path / "config.yaml"
    config.write_text(f"index_dir: {tmp_path / 'no-index'}\n")
    environ = {"TELEGRAM_BOT_TOKEN": SECRET_TOKEN, "TELEGRAM_BASE_URL": unauthorized_bot_api}
    result = qabot("telegram", "--config", str(config), env=environ)
    assert_one_error_line(result, 1, "refused the token", "TELEGRAM_BOT_TOKEN")
    assert SECRET_TOKEN.encode() not in result.stdout + result.stderr
    assert any(path.endswith("/getMe") for path in _UnauthorizedBotApi.requests)


# -- 6. and the review items: config file, usage errors, version ----------------------------------------


@pytest.mark.parametrize("how", ["--config", "QABOT_CONFIG"])
def test_missing_config_file_exits_2(tmp_path: Path, how: str):
    missing = tmp_path / "typo.yaml"
    if how == "--config":
        result = qabot("ask", FLAGSHIP, "--config", str(missing))
    else:
        result = qabot("ask", FLAGSHIP, env={"QABOT_CONFIG": str(missing)})
    assert_one_error_line(result, 2, "typo.yaml", "does not exist")


def test_yaml_syntax_error_is_one_line(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text("reader:\n  model: [unclosed\nindex_dir: x\n")
    assert_one_error_line(qabot("ask", FLAGSHIP, "--config", str(config)), 2, "config.yaml", "line ")


def test_duplicate_yaml_key_is_refused(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text("answers:\n  cache_size: 0\nanswers:\n  cache_size: 5\n")
    assert_one_error_line(qabot("ask", FLAGSHIP, "--config", str(config)), 2, "duplicate key 'answers'", "line 3")


@pytest.mark.parametrize(
    ("args", "says"),
    [(["ask"], "Missing argument"), (["ask", "--bogus", "x"], "No such option"), (["frobnicate"], "No such command")],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], says: str):
    result = qabot(*args)
    assert_one_error_line(result, 2, says)
    assert "─" not in result.stderr.decode()  # no box


def test_version():
    from bot import __version__

    result = qabot("--version")
    assert result.returncode == 0 and result.stdout.decode().strip() == f"qabot {__version__}"


def test_question_starting_with_dash_goes_after_double_dash(config_file: Path):
    result = runner.invoke(app, ["ask", "--json", "--config", str(config_file), "--", "-who backs Ahrar al-Sham?"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["question"] == "-who backs Ahrar al-Sham?"


def test_eval_file_with_an_unusable_question_is_one_error_line(config_file: Path, tmp_path: Path):
    questions = tmp_path / "questions.json"
    qas = [
        {"id": "ok", "question": FLAGSHIP, "answers": [{"text": FLAGSHIP_ANSWER, "answer_start": 0}]},
        {"id": "too-long", "question": TOKEN_HEAVY_QUESTION, "answers": [{"text": "a", "answer_start": 0}]},
    ]
    questions.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]}))
    result = runner.invoke(app, ["eval", str(questions), "--config", str(config_file)])
    assert result.exit_code == 1 and result.stdout == "", result.output
    assert result.stderr.startswith("error: ") and "'too-long'" in result.stderr and "too long" in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_uncaught_qabot_error_in_any_command_is_one_error_line(capsys: pytest.CaptureFixture[str]):
    """A store that goes down mid-command (or any QabotError a command does not catch) is one line, exit 1."""
    from bot.cli import _OneLineErrorsTyper
    from bot.errors import IndexCorruptError

    probe = _OneLineErrorsTyper(pretty_exceptions_enable=False)

    @probe.command()
    def fails() -> None:
        raise IndexCorruptError("the store at db:5432 stopped answering\n(connection reset)")

    @probe.command()
    def other() -> None:  # a second command, so typer keeps the command name
        pass

    with pytest.raises(SystemExit) as exit_info:
        probe(["fails"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: the store at db:5432 stopped answering (connection reset)\n"
