"""A running QAService and index writers: fresh builds are swapped in whole, unreadable ones are not."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pytest

from bot import answering
from bot.answering import QAService
from bot.config import Settings, with_overrides
from bot.indexing import add_article, build_index, current_build_name, remove_article
from tests.conftest import SEED_ARTICLE

ROVER = "Rover finds water\n\nThe Perseverance rover found ice near the pole on Tuesday, NASA said.\n"


@pytest.fixture
def private(service_settings: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "articles").mkdir()
    shutil.copy(SEED_ARTICLE, tmp_path / "articles" / SEED_ARTICLE.name)
    (tmp_path / "rover.txt").write_text(ROVER)
    overrides = {"articles_dir": tmp_path / "articles", "index_dir": tmp_path / "index"}
    settings = with_overrides(service_settings, overrides)
    build_index(settings, progress_bar=False)
    return settings


def test_new_build_is_swapped_in_whole_and_articles_are_fresh(private: Settings, tmp_path: Path):
    service = QAService.from_settings(private)
    old_index, reader = service._index, service._pipeline.reader
    old_chunks = old_index.store.count_documents()
    add_article(private, tmp_path / "rover.txt", progress_bar=False)
    # no question asked in between: the article list alone notices the new build
    assert {a.article_id for a in service.articles()} == {"aleppo-siege-2016", "rover"}
    assert old_index.store.count_documents() == old_chunks, "the old build's store is not rewritten in place"
    assert service._index is not old_index and service._pipeline.reader is reader, "reader weights not reloaded"
    answer = service.answer("What did the rover find near the pole?")
    assert answer.text is not None and "ice" in answer.text and answer.source.article_id == "rover"


def test_uncached_reads_follow_the_build_on_disk_too(private: Settings, tmp_path: Path):
    """``candidates`` (fit_verifier) and ``answer_with_passages`` (qabot eval) reload a changed index like
    ``answer`` does: each reads the build that is current when it is called."""
    service = QAService.from_settings(private)
    question = "What did the rover find near the pole?"
    add_article(private, tmp_path / "rover.txt", progress_bar=False)
    spans, passages = service.candidates(question)
    assert "rover" in {p.meta["article_id"] for p in passages} and "ice" in spans[0].data
    remove_article(private, "rover", progress_bar=False)
    answer, passages = service.answer_with_passages(question, no_answer_threshold=0.0)
    assert "rover" not in {p.meta["article_id"] for p in passages} and "ice" not in (answer.text or "")


def test_unreadable_build_keeps_the_loaded_index_answering(private: Settings, tmp_path: Path, caplog, monkeypatch):
    service = QAService.from_settings(private)
    question = "Who backs Ahrar al-Sham?"
    expected = service.answer(question).text
    broken = private.index_dir / "build-broken"
    shutil.copytree(private.index_dir / current_build_name(private.index_dir), broken)
    (broken / "documents.faiss").write_bytes(b"\x00garbage")
    (private.index_dir / "CURRENT").write_text("build-broken\n")
    with caplog.at_level(logging.WARNING, logger="bot.answering"):
        assert service.answer(question + "?").text == expected, "answers from the index it holds"
        assert service.answer("What does SOHR stand for?").text is not None, "uncached questions too"
    assert "cannot be loaded" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.answering"):
        service.answer("Who is Hadi?")
    assert "cannot be loaded" not in caplog.text, "no new load attempt before the retry delay"
    monkeypatch.setattr(answering, "RELOAD_RETRY_S", 0.0)
    add_article(private, tmp_path / "rover.txt", progress_bar=False)  # a good build replaces the broken one
    assert {a.article_id for a in service.articles()} == {"aleppo-siege-2016", "rover"}


def test_questions_from_many_threads_while_builds_come_and_go(private: Settings, tmp_path: Path):
    service = QAService.from_settings(private)
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        questions = ["Who backs Ahrar al-Sham?", "What did the rover find?", "What does SOHR stand for?"]
        while not stop.is_set():
            for question in questions:
                try:
                    service.answer_many([question, question.lower()])
                    service.articles()
                except BaseException as error:  # pragma: no cover - reported below
                    errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    builds = set()
    for _ in range(2):
        add_article(private, tmp_path / "rover.txt", progress_bar=False)
        service.answer("Who is Hadi?")  # waits for the running answers, then reloads
        builds.add(service._index.build_dir.name)
        remove_article(private, "rover", progress_bar=False)
        service.answer("Who is Hadi?")
        builds.add(service._index.build_dir.name)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == [] and len(builds) == 4, "four builds swapped in while questions ran"
    assert {a.article_id for a in service.articles()} == {"aleppo-siege-2016"}


def test_article_list_never_waits_for_a_running_answer(private: Settings):
    """The Telegram bot asks for /sources on its event loop; an answer holding the service must not block it."""
    service = QAService.from_settings(private)
    held, release = threading.Event(), threading.Event()

    def running_answer() -> None:
        with service._lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=running_answer)
    thread.start()
    held.wait()
    finished = threading.Event()
    threading.Thread(target=lambda: (service.articles(), finished.set())).start()
    returned_while_held = finished.wait(10)
    release.set()
    thread.join()
    assert returned_while_held


def test_a_swap_that_fails_midway_keeps_the_service_answering(private: Settings, tmp_path: Path, monkeypatch):
    """Building the new retrievers fails after the embedder left the old pipeline: answers still come."""
    service = QAService.from_settings(private)
    expected = service.answer("Who backs Ahrar al-Sham?").text
    index_type = type(service._index)
    real = index_type.retrieval_pipeline

    def fails_for_new_builds(self, settings, text_embedder):
        if self is not service._index:
            raise RuntimeError("injected: cannot build retrievers")
        return real(self, settings, text_embedder)

    monkeypatch.setattr(index_type, "retrieval_pipeline", fails_for_new_builds)
    add_article(private, tmp_path / "rover.txt", progress_bar=False)
    assert service.answer("Who backs Ahrar al-Sham??").text == expected
    assert service.index_problem and "could not switch" in service.index_problem
    monkeypatch.setattr(index_type, "retrieval_pipeline", real)
    monkeypatch.setattr(answering, "RELOAD_RETRY_S", 0.0)
    service._unreadable = None  # retry now rather than in 30 s
    assert service.answer("What did the rover find near the pole?").source.article_id == "rover"
