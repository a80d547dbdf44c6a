"""Crash safety of index writers: SIGKILL at every step of a build, and two writers at once.

Each case forks a real build (``index add``, ``index --force``, ``index remove``) that kills itself with
SIGKILL when it reaches a step (the ``QABOT_INDEX_KILL_AT`` hook in ``bot.indexing``). Afterwards the index
must load, and hold either the old or the new article set, and the next build must clean up and finish.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import pytest

from bot.config import Settings, with_overrides
from bot.indexing import KILL_AT_ENV, add_article, build_index, load_index, remove_article
from tests.conftest import SEED_ARTICLE

SEED = "aleppo-siege-2016"
ROVER_TEXT = "Rover finds water\n\nThe rover found ice near the pole on Tuesday. NASA confirmed it later.\n"
BUILD_STEPS = ("staged", "stored", "manifest", "renamed", "current", "cleaned")


@pytest.fixture(scope="module")
def base(project_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built index over the seed article plus a rover article file, copied afresh for every case."""
    root = tmp_path_factory.mktemp("fault-base")
    (root / "articles").mkdir()
    shutil.copy(SEED_ARTICLE, root / "articles" / SEED_ARTICLE.name)
    (root / "rover.txt").write_text(ROVER_TEXT)
    overrides = {"articles_dir": root / "articles", "index_dir": root / "index"}
    build_index(with_overrides(project_settings, overrides), False, False)
    return root


@pytest.fixture
def case(base: Path, project_settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    overrides = {"articles_dir": tmp_path / "articles", "index_dir": tmp_path / "index"}
    return with_overrides(project_settings, overrides), tmp_path


def _context() -> multiprocessing.context.BaseContext:
    """Writers run in processes forked from a fork server that has only imported qabot: forking this test
    process instead can hang the child (thread pools of ONNX Runtime, FAISS's OpenMP, tokenizers)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bot.indexing", "tests.test_index_faults"])
    return context


def _run_killed_at(step: str | None, settings: Settings, operation: str, argument: str = "") -> int | None:
    """Run one index writer in a child that SIGKILLs itself at ``step``; the child's exit code."""
    process = _context().Process(target=_writer, args=(step, settings, operation, argument))
    process.start()
    process.join(180)
    return process.exitcode


def _writer(step: str | None, settings: Settings, operation: str, argument: str) -> None:
    if step is not None:
        os.environ[KILL_AT_ENV] = step
    if operation == "add":
        add_article(settings, Path(argument), progress_bar=False)
    elif operation == "remove":
        remove_article(settings, argument, progress_bar=False)
    else:
        build_index(settings, force=True, progress_bar=False)


def _article_ids(settings: Settings) -> set[str]:
    return {a.article_id for a in load_index(settings).articles}


def _assert_recovers(settings: Settings, expected: set[str]) -> None:
    """The next plain build finishes, holds the articles on disk and leaves one build and no leftovers."""
    build_index(settings, progress_bar=False)
    assert _article_ids(settings) == expected
    leftovers = sorted(p.name for p in settings.index_dir.iterdir() if p.name not in ("CURRENT", ".lock"))
    assert len(leftovers) == 1 and leftovers[0].startswith("build-"), leftovers


@pytest.mark.parametrize("step", ("copied", *BUILD_STEPS))
def test_index_add_killed_at_any_step_leaves_old_or_new_index(case, step: str):
    settings, root = case
    code = _run_killed_at(step, settings, "add", str(root / "rover.txt"))
    assert code == -signal.SIGKILL, f"the build did not reach step {step!r}"
    assert _article_ids(settings) in ({SEED}, {SEED, "rover"})
    _assert_recovers(settings, {SEED, "rover"})


@pytest.mark.parametrize("step", BUILD_STEPS)
def test_forced_rebuild_killed_at_any_step_leaves_a_loadable_index(case, step: str):
    settings, _ = case
    before = load_index(settings).store.count_documents()
    code = _run_killed_at(step, settings, "force")
    assert code == -signal.SIGKILL, f"the build did not reach step {step!r}"
    loaded = load_index(settings)  # CURRENT never names a deleted or half-written build
    assert loaded.build_dir.is_dir() and loaded.store.count_documents() == before
    _assert_recovers(settings, {SEED})


@pytest.mark.parametrize("step", ("removed", "renamed", "current"))
def test_index_remove_killed_leaves_old_or_new_index(case, step: str):
    settings, root = case
    add_article(settings, root / "rover.txt", progress_bar=False)
    code = _run_killed_at(step, settings, "remove", "rover")
    assert code == -signal.SIGKILL
    assert _article_ids(settings) in ({SEED}, {SEED, "rover"})
    _assert_recovers(settings, {SEED})


def test_two_index_adds_at_once_both_land(case):
    """Writers are serialised: neither removes the other's staging folder or drops the other's article."""
    settings, root = case
    (root / "ice.txt").write_text("Ice found\n\nScientists found ice on the Moon's south pole in 2026.\n")
    writers = [
        _context().Process(target=_writer, args=(None, settings, "add", str(path)))
        for path in (root / "rover.txt", root / "ice.txt")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(180)
    assert [w.exitcode for w in writers] == [0, 0]
    assert _article_ids(settings) == {SEED, "rover", "ice"}
