"""``qabot``: index articles, ask questions (one, JSON lines, interactive), evaluate, run the Telegram bot.

A thin layer: parse arguments, call the indexer or the one ``QAService``, render. Expected failures print
one ``error:`` line on stderr and exit non-zero, no traceback: 1 for a failure (bad question, missing or
unreadable index or model, Bot API unreachable or token refused), 2 for a bad config or bad usage.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

try:  # typer >= 0.20 carries its own copy of click; its exceptions are not click's
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions

import bot  # (sets the offline and telemetry environment before any model library loads)
from bot.config import ConfigError, Settings, load_settings
from bot.errors import InvalidQuestionError, QabotError
from bot.question_rules import replace_surrogates
from bot.rendering import render_json_line, render_terminal

EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad usage or bad config, as click and typer exit on a usage error


class _OneLineErrorsTyper(typer.Typer):
    """typer's app, with a usage error as one ``error:`` line (typer draws a box of several lines).

    Unexpected exceptions keep Python's plain traceback: typer's pretty one shows local variables, and a local
    variable can be the bot token.
    """

    def __call__(self, *args, **kwargs):
        command = typer.main.get_command(self)
        try:
            kwargs.setdefault("prog_name", "qabot")
            code = command.main(*args, standalone_mode=False, **kwargs)
        except click_exceptions.NoArgsIsHelpError as error:
            typer.echo(error.ctx.get_help() if error.ctx else str(error), err=True)
            sys.exit(EXIT_USAGE)
        except click_exceptions.UsageError as error:
            where = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
            _print_error(f"{' '.join(error.format_message().split())}{where}")
            sys.exit(EXIT_USAGE)
        except click_exceptions.ClickException as error:
            _print_error(" ".join(error.format_message().split()))
            sys.exit(error.exit_code)
        except typer.Abort:
            _print_error("interrupted")
            sys.exit(130)
        except QabotError as error:  # an expected failure no command caught itself (store down, index unreadable)
            _print_error(" ".join(str(error).split()))
            sys.exit(EXIT_FAILURE)
        sys.exit(code if isinstance(code, int) else 0)


app = _OneLineErrorsTyper(
    add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0], pretty_exceptions_enable=False
)
index_app = typer.Typer(help="Build the index from the articles folder, or add or remove an article.")
app.add_typer(index_app, name="index")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="config.yaml to use (default: the project's).")
]


def _print_error(message: str) -> None:
    typer.secho(f"error: {replace_surrogates(message)}", err=True, fg=typer.colors.RED)


def _fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    _print_error(message)
    return typer.Exit(code)


def _os_error(error: OSError) -> str:
    """``[Errno 13] Permission denied: 'index/x'`` as ``index/x: permission denied``."""
    reason = (error.strerror or str(error)).lower()
    return f"{error.filename}: {reason}" if error.filename else reason


@contextmanager
def _library_errors(action: str) -> Iterator[None]:
    """The index commands' expected failures as one ``error:`` line: the service's own (``QabotError``), or an
    articles folder or index_dir this user cannot read or write (``OSError``: "cannot <action>: <path>: <why>")."""
    try:
        yield
    except QabotError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(f"cannot {action}: {_os_error(error)}") from None


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"qabot {bot.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Answers questions about news articles (a question starting with "-" goes after "--": qabot ask -- "-x?")."""


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as error:
        raise _fail(str(error), EXIT_USAGE) from None


def _service(settings: Settings):
    from bot.answering import QAService

    try:
        return QAService.from_settings(settings)
    except QabotError as error:
        raise _fail(str(error)) from None


def _quiet_libraries() -> None:
    """Model libraries chat on stderr (load reports, progress bars); the CLI's output is the answer."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


@index_app.callback(invoke_without_command=True)
def index(
    ctx: typer.Context,
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
) -> None:
    """Index every article in the articles folder (a no-op when nothing changed)."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.stores import build_index

    _quiet_libraries()
    settings = _settings(config)
    with _library_errors("build the index"):
        result = build_index(settings, force=force)
    state = f"built ({result.embedded_chunks} chunks embedded, {result.faiss_index})" if result.built else "up to date"
    typer.echo(
        f"index {state}: {result.articles} article(s), {result.documents} chunks, "
        f"fingerprint {result.fingerprint} ({result.seconds:.1f}s)"
    )


@index_app.command("add")
def index_add(
    source: Annotated[
        str, typer.Argument(help="An http(s) URL, or a .txt/.md/.html/.pdf file (a .txt may have front matter).")
    ],
    config: ConfigOption = None,
) -> None:
    """Fetch or read an article, store it as .txt in the articles folder and re-index (duplicates are skipped)."""
    from bot.ingest import ingest_file, ingest_url, is_url

    _quiet_libraries()
    settings = _settings(config)
    with _library_errors("add the article"):
        result = ingest_url(settings, source) if is_url(source) else ingest_file(settings, Path(source))
    info = result.info
    if not result.added:
        typer.echo(f"already in the library as {info.article_id!r} ({info.title}); nothing added")
        return
    typer.echo(f"added {info.article_id!r} ({info.title}); index now has {result.articles} article(s)")


@index_app.command("remove")
def index_remove(
    article_id: Annotated[str, typer.Argument(help="The article's id (its file name without .txt).")],
    config: ConfigOption = None,
) -> None:
    """Delete an article from the articles folder and the index (nothing is embedded again)."""
    from bot.stores import remove_article

    _quiet_libraries()
    settings = _settings(config)
    with _library_errors("remove the article"):
        result = remove_article(settings, article_id)
    typer.echo(f"removed {article_id!r}; index now has {result.articles} article(s), {result.documents} chunks")


def _tolerant_stdin() -> None:
    """Bytes on stdin that are not UTF-8 become U+FFFD instead of a UnicodeDecodeError mid-stream."""
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")


def _stdin_questions() -> Iterator[str]:
    _tolerant_stdin()
    for line in sys.stdin:
        yield replace_surrogates(line.rstrip("\n"))


@app.command()
def ask(
    question: Annotated[
        str,
        typer.Argument(
            help='The question, or - to read one question per line from stdin. A question that starts with "-" '
            'goes after "--": qabot ask -- "-5 degrees, where?"'
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per question.")] = False,
    config: ConfigOption = None,
) -> None:
    """Answer a question about the indexed articles.

    Bytes that are not UTF-8 (in the question or on stdin) are read as U+FFFD.
    """
    _quiet_libraries()
    settings = _settings(config)
    if question != "-":
        service = _service(settings)
        try:
            answer = service.answer(question)
        except InvalidQuestionError as error:
            raise _fail(str(error)) from None
        typer.echo(render_json_line(answer) if as_json else render_terminal(answer, color=sys.stdout.isatty()))
        return
    service = _service(settings)
    failures = 0
    for line in _stdin_questions():
        if not line.strip():
            continue  # blank lines separate nothing and ask nothing
        try:
            answer = service.answer(line)
        except InvalidQuestionError as error:
            failures += 1
            if as_json:
                typer.echo(json.dumps({"question": line[:200], "error": str(error)}, ensure_ascii=False))
            else:
                typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
            continue
        typer.echo(render_json_line(answer) if as_json else render_terminal(answer))
        sys.stdout.flush()
    if failures:
        raise typer.Exit(1)


@app.command()
def chat(
    as_json: Annotated[
        bool, typer.Option("--json", help="Read one conversation from stdin (a question a line); JSON lines out.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """A conversation: follow-up questions use the previous turn (help, sources, new, quit; Ctrl-D quits)."""
    from bot.chat import Conversation, prompt_session, run_interactive, run_json

    _quiet_libraries()
    settings = _settings(config)
    conversation = Conversation(_service(settings))
    _tolerant_stdin()
    with conversation:
        if as_json:

            def write(line: str) -> None:
                typer.echo(line)
                sys.stdout.flush()

            if run_json(conversation, sys.stdin, write):
                raise typer.Exit(1)
            return
        run_interactive(conversation, prompt_session(), typer.echo, color=sys.stdout.isatty())


@app.command("eval")
def evaluate_command(
    files: Annotated[
        list[Path], typer.Argument(help="SQuAD-format JSON files (v1.1, or v2.0 with is_impossible), scored together.")
    ],
    config: ConfigOption = None,
    report: Annotated[Path | None, typer.Option(help="Also write per-question results here (JSON).")] = None,
    sweep: Annotated[bool, typer.Option(help="Also show EM/F1 for no-answer thresholds from 0 to 0.95.")] = False,
    gold_history: Annotated[
        bool, typer.Option(help="Follow-up files: earlier turns get the gold answers, not the bot's own.")
    ] = False,
) -> None:
    """Exact match, F1, no-answer accuracy, retrieval recall@k and confidence quality (AUROC, ECE) of the whole
    service on one or more question files (e.g. an answerable set and an unanswerable set).

    A follow-up file (conversations, see tests/data/README.md) is scored alone, on the last turn of each
    conversation.
    """
    from bot.evaluation import evaluate, load_questions, threshold_sweep
    from bot.follow_up_evaluation import is_follow_up_file

    _quiet_libraries()
    settings = _settings(config)
    if any(is_follow_up_file(file) for file in files):
        if len(files) != 1:
            raise _fail(
                "a follow-up (conversations) file is scored on its own: give it without other files", EXIT_USAGE
            )
        _evaluate_follow_ups(settings, files[0], gold_history, report)
        return
    try:
        loaded = [(file, question) for file in files for question in load_questions(file)]
    except QabotError as error:
        raise _fail(str(error)) from None
    service = _service(settings)
    for file, item in loaded:  # all of them first: a bad one found after minutes of answering would waste them
        try:
            service.validate_question(item.question)
        except InvalidQuestionError as error:
            raise _fail(f"{file}: question {item.qid!r}: {error}") from None
    questions = [question for _, question in loaded]
    result = evaluate(service, questions)
    typer.echo(f"questions            {result.answerable} answerable + {result.unanswerable} unanswerable")
    typer.echo(f"exact match          {result.exact_match:.1f}")
    typer.echo(f"F1                   {result.f1:.1f}")
    typer.echo(f"no-answer accuracy   {result.no_answer_accuracy:.1f}")
    typer.echo(
        f"  abstained on answerable {result.abstained_on_answerable}, answered unanswerable "
        f"{result.answered_unanswerable}"
    )
    typer.echo(f"retrieval recall@{result.retrieval_top_k}   {result.retrieval_recall:.1f}")
    if result.unanswerable:
        typer.echo(f"refused unanswerable {result.refused_unanswerable:.1f}")
    typer.echo(f"confidence AUROC     {result.confidence_auroc:.1f}  (right vs wrong among {result.answered} answered)")
    typer.echo(f"calibration error    {result.calibration_error:.1f}  (ECE among answered, 10 bins)")
    if sweep:
        typer.echo("\nthreshold     EM     F1  no-answer acc  overall F1")
        for row in threshold_sweep(service, questions):
            typer.echo(
                f"{row.threshold:9.2f} {row.exact_match:6.1f} {row.f1:6.1f} {row.no_answer_accuracy:14.1f}"
                f" {row.overall_f1:11.1f}"
            )
    if report:
        payload = {"summary": result.summary(), "questions": result.per_question}
        report.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")


def _evaluate_follow_ups(settings: Settings, file: Path, gold_history: bool, report: Path | None) -> None:
    from bot.follow_up_evaluation import evaluate_follow_ups, load_conversations

    try:
        cases = load_conversations(file)
    except QabotError as error:
        raise _fail(str(error)) from None
    result = evaluate_follow_ups(_service(settings), cases, gold_history=gold_history)
    history = "gold answers" if gold_history else "the bot's own answers"
    typer.echo(f"conversations        {result.conversations} (last turn scored; earlier turns: {history})")
    typer.echo(f"last turns right     {result.right_percent:.1f} % ({result.right} of {result.conversations})")
    typer.echo(f"exact match          {result.exact_match:.1f}")
    typer.echo(f"F1                   {result.f1:.1f}")
    if report:
        payload = {"right_percent": result.right_percent, "conversations": result.per_conversation}
        report.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Serve the HTTP API: POST /ask, POST /articles (QABOT_ADMIN_TOKEN), GET /health, docs at /docs."""
    import os

    from bot.server import ADMIN_TOKEN_ENV, create_app, listen, run_server

    _quiet_libraries()
    settings = _settings(config)
    try:
        sock = listen(host, port)
    except OSError as error:
        # create_server appends the address to strerror; the errno's own text is the clean reason
        reason = os.strerror(error.errno) if error.errno and error.errno > 0 else (error.strerror or str(error))
        raise _fail(f"cannot listen on {host}:{port}: {reason}") from None
    admin_token = os.environ.get(ADMIN_TOKEN_ENV, "").strip() or None
    with sock:
        service = _service(settings)
        typer.echo(
            f"qabot serving on http://{host}:{port} (API docs at /docs); POST /articles "
            + ("needs the admin token" if admin_token else f"is off: {ADMIN_TOKEN_ENV} is not set"),
            err=True,
        )
        run_server(create_app(service, admin_token), sock)


@app.command()
def telegram(config: ConfigOption = None) -> None:
    """Run the Telegram bot (token from TELEGRAM_BOT_TOKEN; long polling unless telegram.mode is webhook).

    With telegram.answer_url (or QABOT_SERVE_URL) it forwards questions to `qabot serve` workers instead of
    loading the models."""
    import os

    from bot.telegram_bot import check_bot_api, run_bot
    from bot.telegram_token import read_token

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("haystack", "faiss", "httpx"):  # per-question component runs, loader lines, request URLs
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = _settings(config)
    try:
        token = read_token(os.environ)
        # Before the model loads: a refused token or an unreachable Bot API is known in a second, not after it.
        check_bot_api(token, settings.telegram)
    except QabotError as error:
        raise _fail(str(error)) from None
    if settings.telegram.answer_url:  # a thin front end: the workers answer, no model is loaded here
        from bot.serve_client import ServeClient

        answering = ServeClient.from_settings(settings.telegram, token)
        logging.getLogger(__name__).info("forwarding questions to %s/ask", settings.telegram.answer_url)
    else:
        answering = _service(settings)
    try:
        run_bot(answering, token, settings.telegram)
    except QabotError as error:
        raise _fail(str(error)) from None


if __name__ == "__main__":  # pragma: no cover
    app()
