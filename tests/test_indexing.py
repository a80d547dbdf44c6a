"""The FAISS index on disk: build, round trip, idempotence, atomic replacement, add, corrupt/missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.errors import ArticleError, IndexCorruptError, IndexMissingError
from bot.indexing import add_article, build_index, current_build_name, load_index
from tests.conftest import BOILERPLATE_MARKERS, SEED_ARTICLE, settings_with


@pytest.fixture
def index_settings(project_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a private articles folder (a copy of the seed) and a private index folder."""
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(SEED_ARTICLE, articles / SEED_ARTICLE.name)
    return settings_with(project_settings, articles_dir=articles, index_dir=tmp_path / "index")


def test_build_persists_real_faiss_files_and_round_trips(index_settings: Settings):
    result = build_index(index_settings, progress_bar=False)
    assert result.built and result.articles == 1 and result.documents > 10
    build_dir = index_settings.index_dir / current_build_name(index_settings.index_dir)
    assert (build_dir / "documents.faiss").stat().st_size > 0
    assert (build_dir / "documents.json").stat().st_size > 0

    loaded = load_index(index_settings)
    documents = loaded.store.filter_documents()
    assert len(documents) == result.documents == loaded.store.index.ntotal
    for document in documents:
        assert np.isclose(np.linalg.norm(document.embedding), 1.0, atol=1e-3), "embeddings are normalised"
        assert not any(marker in document.content for marker in BOILERPLATE_MARKERS)
    # the vector of a stored chunk finds that chunk first
    probe = documents[3]
    assert loaded.store.search(probe.embedding, top_k=1)[0].id == probe.id


def test_rebuild_with_same_inputs_is_a_no_op(index_settings: Settings):
    first = build_index(index_settings, progress_bar=False)
    build_dir = index_settings.index_dir / current_build_name(index_settings.index_dir)
    mtime = (build_dir / "documents.faiss").stat().st_mtime_ns
    second = build_index(index_settings, progress_bar=False)
    assert not second.built and second.fingerprint == first.fingerprint
    assert (build_dir / "documents.faiss").stat().st_mtime_ns == mtime


def test_changed_settings_rebuild_and_replace_old_build(index_settings: Settings):
    first = build_index(index_settings, progress_bar=False)
    changed = settings_with(
        index_settings, chunking=index_settings.chunking.model_copy(update={"sentences_per_chunk": 2})
    )
    second = build_index(changed, progress_bar=False)
    assert second.built and second.fingerprint != first.fingerprint
    builds = sorted(p.name for p in index_settings.index_dir.iterdir() if p.is_dir())
    assert builds == [f"build-{second.fingerprint}"]


def test_crash_during_build_leaves_previous_index(index_settings: Settings, monkeypatch: pytest.MonkeyPatch):
    first = build_index(index_settings, progress_bar=False)
    from haystack_integrations.document_stores.faiss import FAISSDocumentStore

    def crash(self, path):
        Path(str(path) + ".faiss").write_bytes(b"half written")
        raise OSError("disk full")

    monkeypatch.setattr(FAISSDocumentStore, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        build_index(index_settings, force=True, progress_bar=False)
    monkeypatch.undo()
    assert current_build_name(index_settings.index_dir) == f"build-{first.fingerprint}"
    assert load_index(index_settings).store.count_documents() == first.documents


def test_add_article_indexes_it(index_settings: Settings, tmp_path: Path):
    build_index(index_settings, progress_bar=False)
    new = tmp_path / "Mars Rover.txt"
    new.write_text(
        "---\ntitle: Rover finds water\nsource: Test Wire\n---\nThe rover found ice near the pole on Tuesday.\n"
    )
    info, result = add_article(index_settings, new, progress_bar=False)
    assert info.article_id == "mars-rover" and result.built and result.articles == 2
    titles = {a.title for a in load_index(index_settings).articles}
    assert titles == {"Rover finds water", load_index(index_settings).articles[0].title}
    assert (index_settings.articles_dir / "mars-rover.txt").exists()


def test_add_bad_article_changes_nothing(index_settings: Settings, tmp_path: Path):
    first = build_index(index_settings, progress_bar=False)
    bad = tmp_path / "empty.txt"
    bad.write_text("")
    with pytest.raises(ArticleError):
        add_article(index_settings, bad, progress_bar=False)
    assert sorted(p.name for p in index_settings.articles_dir.iterdir()) == [SEED_ARTICLE.name]
    assert current_build_name(index_settings.index_dir) == f"build-{first.fingerprint}"


def test_missing_index_is_reported(index_settings: Settings):
    with pytest.raises(IndexMissingError, match="qabot index"):
        load_index(index_settings)


@pytest.mark.parametrize("victim", ["documents.faiss", "documents.json", "manifest.json"])
def test_corrupt_index_is_reported(index_settings: Settings, victim: str):
    build_index(index_settings, progress_bar=False)
    build_dir = index_settings.index_dir / current_build_name(index_settings.index_dir)
    (build_dir / victim).write_bytes(b"\x00garbage")
    with pytest.raises(IndexCorruptError, match="qabot index --force"):
        load_index(index_settings)
    rebuilt = build_index(index_settings, force=True, progress_bar=False)
    assert load_index(index_settings).store.count_documents() == rebuilt.documents


def test_current_pointing_nowhere_is_corrupt(index_settings: Settings):
    build_index(index_settings, progress_bar=False)
    (index_settings.index_dir / "CURRENT").write_text("build-does-not-exist\n")
    with pytest.raises(IndexCorruptError):
        load_index(index_settings)
