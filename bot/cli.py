"""``qabot``: index articles, ask questions (one, JSON lines, interactive), evaluate, run the Telegram bot.

A thin layer: parse arguments, call the indexer or the one ``QAService``, render. Expected failures
(bad config, missing index, bad question) print one ``error:`` line and exit non-zero, no traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

import bot  # noqa: F401  (sets the offline and telemetry environment before any model library loads)
from bot.config import ConfigError, Settings, load_settings
from bot.errors import InvalidQuestionError, QabotError
from bot.rendering import render_json_line, render_terminal

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
index_app = typer.Typer(help="Build the index from the articles folder, or add an article to it.")
app.add_typer(index_app, name="index")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="config.yaml to use (default: the project's).")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as error:
        raise _fail(str(error), 2) from None


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
    from bot.indexing import build_index

    _quiet_libraries()
    settings = _settings(config)
    try:
        result = build_index(settings, force=force)
    except QabotError as error:
        raise _fail(str(error)) from None
    state = "built" if result.built else "up to date"
    typer.echo(
        f"index {state}: {result.articles} article(s), {result.documents} chunks, "
        f"fingerprint {result.fingerprint} ({result.seconds:.1f}s)"
    )


@index_app.command("add")
def index_add(
    path: Annotated[Path, typer.Argument(help="A UTF-8 .txt article (optional front matter: title, source, date).")],
    config: ConfigOption = None,
) -> None:
    """Copy an article into the articles folder and re-index."""
    from bot.indexing import add_article

    _quiet_libraries()
    settings = _settings(config)
    try:
        info, result = add_article(settings, path)
    except QabotError as error:
        raise _fail(str(error)) from None
    typer.echo(f"added {info.article_id!r} ({info.title}); index now has {result.articles} article(s)")


def _stdin_questions() -> Iterator[str]:
    for line in sys.stdin:
        yield line.rstrip("\n")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, or - to read one question per line from stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per question.")] = False,
    config: ConfigOption = None,
) -> None:
    """Answer a question about the indexed articles."""
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
def chat(config: ConfigOption = None) -> None:
    """Interactive questions and answers; an empty line or Ctrl-D ends the chat."""
    _quiet_libraries()
    settings = _settings(config)
    service = _service(settings)
    titles = ", ".join(article.title for article in service.articles())
    typer.echo(f"Ask me about: {titles}\n(empty line or Ctrl-D to quit)")
    color = sys.stdout.isatty()
    while True:
        try:
            question = input("? ")
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not question.strip():
            return
        try:
            typer.echo(render_terminal(service.answer(question), color=color))
        except InvalidQuestionError as error:
            typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)


@app.command("eval")
def evaluate_command(
    files: Annotated[
        list[Path], typer.Argument(help="SQuAD-format JSON files (v1.1, or v2.0 with is_impossible), scored together.")
    ],
    config: ConfigOption = None,
    report: Annotated[Path | None, typer.Option(help="Also write per-question results here (JSON).")] = None,
    sweep: Annotated[bool, typer.Option(help="Also show EM/F1 for no-answer thresholds from 0 to 0.95.")] = False,
) -> None:
    """Exact match, F1, no-answer accuracy, retrieval recall@k and confidence quality (AUROC, ECE) of the whole
    service on one or more question files (e.g. an answerable set and an unanswerable set)."""
    from bot.evaluation import evaluate, load_questions, threshold_sweep

    _quiet_libraries()
    settings = _settings(config)
    try:
        questions = [question for file in files for question in load_questions(file)]
    except QabotError as error:
        raise _fail(str(error)) from None
    service = _service(settings)
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


@app.command()
def telegram(config: ConfigOption = None) -> None:
    """Run the Telegram bot (token from TELEGRAM_BOT_TOKEN; long polling unless telegram.mode is webhook)."""
    import os

    from bot.telegram_bot import read_token, run_bot

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("haystack", "faiss", "httpx"):  # per-question component runs, loader lines, request URLs
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = _settings(config)
    try:
        token = read_token(os.environ)
    except QabotError as error:
        raise _fail(str(error)) from None
    service = _service(settings)
    run_bot(service, token, settings.telegram)


if __name__ == "__main__":  # pragma: no cover
    app()
