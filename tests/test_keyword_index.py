"""BM25 on bm25s: the same rankings as Haystack's BM25Plus (what qabot used before), filters, persistence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from haystack import Document
from haystack.document_stores.in_memory import InMemoryDocumentStore

from bot.config import Settings
from bot.indexing import load_index
from bot.keyword_index import KeywordIndex


def _haystack_bm25plus(documents: list[Document]) -> InMemoryDocumentStore:
    store = InMemoryDocumentStore(bm25_algorithm="BM25Plus")
    store.write_documents([replace(d, embedding=None) for d in documents])
    return store


def _ids(documents: list[Document]) -> list[str]:
    return [d.id for d in documents]


def test_rankings_equal_haystack_bm25plus_on_every_article_question(service_settings: Settings, article_questions):
    documents = load_index(service_settings).store.filter_documents()
    reference, ours = _haystack_bm25plus(documents), KeywordIndex.build(documents)
    for qa in article_questions:
        for top_k in (4, 10):
            expected = reference.bm25_retrieval(qa["question"], top_k=top_k)
            found = ours.search(qa["question"], top_k)
            assert _ids(found) == _ids(expected), qa["question"]
            assert [d.score for d in found] == pytest.approx([d.score for d in expected], rel=1e-6)


FILTERS = [
    {"field": "meta.article_id", "operator": "==", "value": "b"},
    {"field": "meta.article_id", "operator": "in", "value": ["a", "c"]},
    {"field": "meta.start", "operator": ">=", "value": 2},
    {"operator": "AND", "conditions": [{"field": "meta.article_id", "operator": "==", "value": "a"}]},
]


@pytest.mark.parametrize("filters", FILTERS)
def test_filters_keep_haystacks_meaning(filters):
    texts = ["the rebels held the city", "rebels left the city at night", "a city of a million people",
             "the army took the city", "night raids on the rebels", "x"]  # fmt: skip
    documents = [
        Document(content=t, meta={"article_id": "abc"[i % 3], "start": i}) for i, t in enumerate(texts)
    ]
    reference, ours = _haystack_bm25plus(documents), KeywordIndex.build(documents)
    for query in ["rebels city", "night", "the a x", "million"]:
        expected = reference.bm25_retrieval(query, top_k=3, filters=filters)
        assert _ids(ours.search(query, 3, filters)) == _ids(expected), (query, filters)


def test_saved_index_reloads_without_rebuilding(service_settings: Settings, tmp_path: Path, monkeypatch):
    loaded = load_index(service_settings)
    assert (loaded.build_dir / "bm25" / "data.csc.index.npy").is_file(), "BM25 is saved with the build"
    documents = loaded.store.filter_documents()
    built = KeywordIndex.build(documents)
    built.save(tmp_path / "bm25")

    def no_rebuild(*_args):
        raise AssertionError("loading must not tokenize and score the chunks again")

    monkeypatch.setattr(KeywordIndex, "build", no_rebuild)
    reloaded = KeywordIndex.load(tmp_path / "bm25", list(reversed(documents)))
    for question in ["Who backs Ahrar al-Sham?", "What does SOHR stand for?", "siege of Aleppo"]:
        assert _ids(reloaded.search(question, 4)) == _ids(built.search(question, 4))
    assert load_index(service_settings).keyword.search("Ahrar al-Sham", 1), "load_index reloads it too"
    with pytest.raises(ValueError, match="does not cover"):
        KeywordIndex.load(tmp_path / "bm25", documents[:-1])
