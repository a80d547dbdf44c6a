"""Shared fixtures: real settings, a real index built on disk in a temp folder, one real QAService."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bot  # noqa: F401  (offline environment before any model library loads)
from bot.config import PROJECT_ROOT, Settings, load_settings, with_overrides

DATA_DIR = Path(__file__).parent / "data"
QUESTIONS_FILE = DATA_DIR / "aleppo_questions.json"
UNANSWERABLE_FILE = DATA_DIR / "aleppo_unanswerable.json"  # test set only: never tuned on (issue 7)
SEED_ARTICLE = PROJECT_ROOT / "data" / "articles" / "aleppo-siege-2016.txt"
BOILERPLATE_MARKERS = ("NOW WATCH", "F-35", "Emails & Alerts", "Site highlights", "Follow Business Insider")


@pytest.fixture(scope="session")
def project_settings() -> Settings:
    """config.yaml as shipped."""
    return load_settings()


@pytest.fixture(scope="session")
def session_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("index")


@pytest.fixture(scope="session")
def service_settings(project_settings: Settings, session_index_dir: Path) -> Settings:
    """The shipped config with its index in a temp folder, built once per session."""
    from bot.indexing import build_index

    settings = with_overrides(project_settings, {"index_dir": session_index_dir})
    build_index(settings, progress_bar=False)
    return settings


@pytest.fixture(scope="session")
def config_file(service_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config file for ``qabot`` subprocesses that uses the session's index (built once in a temp folder)."""
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(f"index_dir: {service_settings.index_dir}\n")
    return path


@pytest.fixture(scope="session")
def qa_service(service_settings: Settings):
    """One real QAService (real index on disk, real embedder, real reader) shared by the session."""
    from bot.answering import QAService

    return QAService.from_settings(service_settings)


@pytest.fixture(scope="session")
def article_questions() -> list[dict]:
    """The hand-written question set: dicts with id, question, answers, is_impossible."""
    data = json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))
    return [qa for article in data["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
