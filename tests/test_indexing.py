"""The index on disk: build, round trip, idempotence, atomic replacement, incremental add/remove, edits,
checksums and repair, the write lock, corrupt/missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings, with_overrides
from bot.errors import ArticleError, IndexBusyError, IndexCorruptError, IndexMissingError
from bot.indexing import (
    add_article,
    build_index,
    current_build_name,
    index_write_lock,
    load_index,
    remove_article,
)
from bot.pipeline import build_text_embedder
from tests.conftest import BOILERPLATE_MARKERS, SEED_ARTICLE


@pytest.fixture
def index_settings(project_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a private articles folder (a copy of the seed) and a private index folder."""
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(SEED_ARTICLE, articles / SEED_ARTICLE.name)
    return with_overrides(project_settings, {"articles_dir": articles, "index_dir": tmp_path / "index"})


def test_build_persists_real_faiss_files_and_round_trips(index_settings: Settings):
    result = build_index(index_settings, progress_bar=False)
    assert result.built and result.articles == 1 and result.documents > 10
    build_dir = index_settings.index_dir / current_build_name(index_settings.index_dir)
    assert (build_dir / "documents.faiss").stat().st_size > 0
    assert (build_dir / "documents.json").stat().st_size > 0

    loaded = load_index(index_settings)
    documents = loaded.store.filter_documents()
    assert len(documents) == result.documents == loaded.store.index.ntotal == len(loaded.keyword)
    vectors = np.load(build_dir / "embeddings.npy")
    assert vectors.shape == (result.documents, loaded.manifest["embedding_dim"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3), "embeddings are normalised"
    for document in documents:
        assert document.embedding is None, "vectors live in FAISS and embeddings.npy, not in documents.json"
        assert not any(marker in document.content for marker in BOILERPLATE_MARKERS)
    # the vector of a stored chunk finds that chunk first
    assert loaded.store.search(vectors[3].tolist(), top_k=1)[0].id == documents[3].id


def test_rebuild_with_same_inputs_is_a_no_op(index_settings: Settings):
    first = build_index(index_settings, progress_bar=False)
    build_dir = index_settings.index_dir / current_build_name(index_settings.index_dir)
    mtime = (build_dir / "documents.faiss").stat().st_mtime_ns
    second = build_index(index_settings, progress_bar=False)
    assert not second.built and second.fingerprint == first.fingerprint
    assert (build_dir / "documents.faiss").stat().st_mtime_ns == mtime


def test_changed_settings_rebuild_and_replace_old_build(index_settings: Settings):
    first = build_index(index_settings, progress_bar=False)
    changed = with_overrides(index_settings, {"chunking.sentences_per_chunk": 2})
    second = build_index(changed, progress_bar=False)
    assert second.built and second.fingerprint != first.fingerprint
    builds = sorted(p.name for p in index_settings.index_dir.iterdir() if p.is_dir())
    assert builds == [current_build_name(index_settings.index_dir)]
    assert load_index(changed).fingerprint == second.fingerprint


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
    assert load_index(index_settings).fingerprint == first.fingerprint
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
    assert load_index(index_settings).fingerprint == first.fingerprint


def test_missing_index_is_reported(index_settings: Settings):
    with pytest.raises(IndexMissingError, match="qabot index"):
        load_index(index_settings)


@pytest.mark.parametrize(
    "victim", ["documents.faiss", "documents.json", "manifest.json", "embeddings.npy", "bm25/data.csc.index.npy"]
)
def test_corrupt_index_is_reported_and_plain_index_repairs_it(index_settings: Settings, victim: str):
    first = build_index(index_settings, progress_bar=False)
    build_dir = index_settings.index_dir / current_build_name(index_settings.index_dir)
    data = (build_dir / victim).read_bytes()
    # flip bytes in the middle: the file still parses as what it is, only its checksum can tell
    middle = len(data) // 2
    flipped = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    (build_dir / victim).write_bytes(data[:middle] + flipped + data[middle + 8 :])
    if victim != "embeddings.npy":  # not read when serving, only when a build reuses vectors
        with pytest.raises(IndexCorruptError, match="qabot index"):
            load_index(index_settings)
    rebuilt = build_index(index_settings, progress_bar=False)  # no --force: the checksums say it is damaged
    assert rebuilt.built and rebuilt.fingerprint == first.fingerprint
    assert rebuilt.embedded_chunks == first.documents, "a damaged build is never a source of reused vectors"
    assert load_index(index_settings).store.count_documents() == rebuilt.documents


def test_add_embeds_only_the_new_article_and_remove_embeds_nothing(index_settings: Settings, tmp_path: Path):
    first = build_index(index_settings, progress_bar=False)
    seed_vectors = np.load(index_settings.index_dir / current_build_name(index_settings.index_dir) / "embeddings.npy")
    new = tmp_path / "rover.txt"
    new.write_text("Rover finds water\n\nThe rover found ice near the pole. NASA said so on Tuesday. " * 3)
    _, added = add_article(index_settings, new, progress_bar=False)
    assert added.built and added.articles == 2
    assert 0 < added.embedded_chunks == added.documents - first.documents, "only the new article is embedded"
    loaded = load_index(index_settings)
    assert {a.article_id for a in loaded.articles} == {"aleppo-siege-2016", "rover"}
    vectors = np.load(loaded.build_dir / "embeddings.npy")
    assert np.array_equal(vectors[: first.documents], seed_vectors), "the seed article's vectors are reused as is"

    removed = remove_article(index_settings, "rover", progress_bar=False)
    assert removed.built and removed.embedded_chunks == 0 and removed.articles == 1
    assert removed.fingerprint == first.fingerprint and removed.documents == first.documents
    assert [a.article_id for a in load_index(index_settings).articles] == ["aleppo-siege-2016"]
    assert not (index_settings.articles_dir / "rover.txt").exists()
    assert load_index(index_settings).keyword.search("rover ice pole", top_k=4) == []


def test_edited_article_is_embedded_again_alone(index_settings: Settings, tmp_path: Path):
    build_index(index_settings, progress_bar=False)
    other = index_settings.articles_dir / "rover.txt"
    other.write_text("Rover finds water\n\nThe rover found ice near the pole on Tuesday.\n")
    with_rover = build_index(index_settings, progress_bar=False)
    other.write_text("Rover finds water\n\nThe rover found liquid water near the pole on Wednesday.\n")
    edited = build_index(index_settings, progress_bar=False)
    assert edited.built and edited.embedded_chunks == 1 and edited.documents == with_rover.documents
    assert load_index(index_settings).keyword.search("liquid", top_k=1)[0].meta["article_id"] == "rover"


def test_remove_unknown_or_last_article_changes_nothing(index_settings: Settings):
    first = build_index(index_settings, progress_bar=False)
    with pytest.raises(ArticleError, match="no article 'nope'"):
        remove_article(index_settings, "nope", progress_bar=False)
    with pytest.raises(ArticleError, match="only article"):
        remove_article(index_settings, "aleppo-siege-2016", progress_bar=False)
    assert (index_settings.articles_dir / SEED_ARTICLE.name).exists()
    assert load_index(index_settings).fingerprint == first.fingerprint


def test_second_writer_waits_for_the_lock_then_gives_up_with_a_clear_error(index_settings: Settings):
    impatient = with_overrides(index_settings, {"index.lock_timeout_s": 0.3})
    with index_write_lock(index_settings.index_dir, timeout_s=0), pytest.raises(IndexBusyError, match="another"):
        build_index(impatient, progress_bar=False)
    assert current_build_name(index_settings.index_dir) is None, "the second writer wrote nothing"
    assert build_index(impatient, progress_bar=False).built, "the lock is free again afterwards"


def test_hnsw_index_finds_the_same_chunks_as_flat(index_settings: Settings):
    flat = build_index(index_settings, progress_bar=False)
    loaded_flat = load_index(index_settings)
    hnsw_settings = with_overrides(index_settings, {"index.faiss_index": "hnsw"})
    hnsw = build_index(hnsw_settings, progress_bar=False)
    assert hnsw.built and hnsw.faiss_index == "hnsw" and hnsw.embedded_chunks == 0, "vectors reused, FAISS rebuilt"
    loaded = load_index(hnsw_settings)
    vectors = np.load(loaded.build_dir / "embeddings.npy")
    for probe in vectors[:5]:
        expected = [d.id for d in loaded_flat.store.search(probe.tolist(), top_k=3)]
        assert [d.id for d in loaded.store.search(probe.tolist(), top_k=3)] == expected
    assert flat.faiss_index == "flat"


def test_current_pointing_nowhere_is_corrupt(index_settings: Settings):
    build_index(index_settings, progress_bar=False)
    (index_settings.index_dir / "CURRENT").write_text("build-does-not-exist\n")
    with pytest.raises(IndexCorruptError):
        load_index(index_settings)


def test_cli_index_add_and_remove(index_settings: Settings, tmp_path: Path):
    import yaml
    from typer.testing import CliRunner

    from bot.cli import app

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"articles_dir": str(index_settings.articles_dir),
                                      "index_dir": str(index_settings.index_dir)}))  # fmt: skip
    new = tmp_path / "rover.txt"
    body = " ".join(f"The rover found ice near crater {i} of the pole on Tuesday." for i in range(10))
    new.write_text(f"Rover finds water\n\n{body}\n")  # over ingest.min_words: an article, not a fragment
    runner = CliRunner()
    assert runner.invoke(app, ["index", "--config", str(config)]).exit_code == 0
    added = runner.invoke(app, ["index", "add", str(new), "--config", str(config)])
    assert added.exit_code == 0 and "2 article(s)" in added.output, added.output
    removed = runner.invoke(app, ["index", "remove", "rover", "--config", str(config)])
    assert removed.exit_code == 0 and "removed 'rover'; index now has 1 article(s)" in removed.output
    unknown = runner.invoke(app, ["index", "remove", "rover", "--config", str(config)])
    assert unknown.exit_code == 1 and "error: no article 'rover'" in unknown.output
    assert [a.article_id for a in load_index(index_settings).articles] == ["aleppo-siege-2016"]


def test_a_scoped_question_finds_its_article_beyond_the_global_top_40(index_settings: Settings):
    """FAISS filters after its search (top_k * 10 = 40 chunks here): a chat's small article that is not among
    the 40 nearest chunks of the whole corpus must still be found when the question is scoped to it."""
    from haystack import Document, component

    from bot.articles import ArticleInfo
    from bot.indexing import load_index, write_build
    from bot.pipeline import article_filter

    rng = np.random.default_rng(7)
    dim = 384

    def unit(vectors: np.ndarray) -> np.ndarray:
        return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)

    query = unit(rng.normal(size=dim))
    near = unit(query + 0.3 * unit(rng.normal(size=(200, dim))))  # 200 bulk chunks much nearer than ours
    far = unit(rng.normal(size=(800, dim)))
    ours = unit(query + 1.2 * unit(rng.normal(size=dim)))
    vectors = np.vstack([near, far, ours[None, :]])
    article_ids = [f"bulk-{i // 20}" for i in range(1000)] + ["ours"]
    documents = [
        Document(id=f"chunk-{i}", content=f"chunk {i}", meta={"article_id": a, "title": a})
        for i, a in enumerate(article_ids)
    ]
    articles = [ArticleInfo(article_id=a, title=a) for a in dict.fromkeys(article_ids)]
    index_settings.resolve(index_settings.index_dir).mkdir(parents=True)
    write_build(index_settings, articles, [a.article_id for a in articles], "synthetic", documents, vectors)

    @component
    class FixedEmbedding:  # stands in for the text embedder: the query vector is given
        @component.output_types(embedding=list[float])
        def run(self, text: str) -> dict[str, list[float]]:
            return {"embedding": query.tolist()}

    pipeline, _ = load_index(index_settings).retrieval_pipeline(index_settings, FixedEmbedding())
    dense = pipeline.get_component("dense_retriever")
    unscoped = dense.run(query_embedding=query.tolist(), top_k=40)["documents"]
    assert len(unscoped) == 40 and "ours" not in {d.meta["article_id"] for d in unscoped}  # the premise
    scoped = dense.run(query_embedding=query.tolist(), filters=article_filter(frozenset({"ours"})))["documents"]
    assert [d.id for d in scoped] == ["chunk-1000"]
    assert scoped[0].score == pytest.approx(1 / (1 + float(((ours - query) ** 2).sum())), rel=1e-4)
    two = article_filter(frozenset({"ours", "bulk-3"}))
    assert {d.meta["article_id"] for d in dense.run(query_embedding=query.tolist(), filters=two)["documents"]} <= {
        "ours",
        "bulk-3",
    }


def test_articles_embedded_group_by_group_keep_their_own_chunks_and_vectors(
    index_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """A large build chunks the next group of articles while the previous group is embedded: with one article per
    group, every chunk must still get its own vector, in the same order as a build that embeds them all at once."""
    texts = {
        "rover": "The rover found ice near the pole. NASA said so on Tuesday. " * 4,
        "budget": "The council passed the budget. Taxes rise by two percent next year. " * 4,
    }
    for name, text in texts.items():
        (index_settings.articles_dir / f"{name}.txt").write_text(f"{name.title()}\n\n{text}\n")
    together = build_index(index_settings, force=True, progress_bar=False)
    expected = load_index(index_settings)
    monkeypatch.setattr("bot.indexing.EMBED_GROUP_CHUNKS", 1)  # one article per group: three groups in flight
    grouped = build_index(index_settings, force=True, progress_bar=False)
    loaded = load_index(index_settings)
    assert grouped.documents == together.documents and grouped.embedded_chunks == together.documents
    assert [d.id for d in loaded.keyword.documents] == [d.id for d in expected.keyword.documents]
    # int8 activations are quantized per call, so other batches move a vector a little, never to another text
    similarity = np.sum(np.asarray(loaded.vectors) * np.asarray(expected.vectors), axis=1)
    assert similarity.min() > 0.97
    # and each row is its own chunk's (both builds could share a mix-up): the chunk's text embedded alone lands on it
    alone = build_text_embedder(index_settings)
    for document, vector in zip(loaded.store.filter_documents(), np.asarray(loaded.vectors), strict=True):
        assert float(np.dot(vector, alone.run(text=document.content)["embedding"])) > 0.97, document.content
