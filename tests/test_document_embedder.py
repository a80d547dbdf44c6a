"""The bulk document embedder: length-sorted, token-capped batches run by parallel workers, vectors in input order."""

from __future__ import annotations

import numpy as np
from haystack import Document
from hypothesis import given
from hypothesis import strategies as st

from bot.articles import load_article
from bot.chunking import SentenceChunker, article_document
from bot.config import Settings
from bot.models import embedder_onnx_files
from bot.onnx_components import OnnxDocumentEmbedder, OnnxTextEmbedder, length_batches
from tests.conftest import SEED_ARTICLE


@given(
    st.lists(st.integers(1, 300), max_size=80),
    st.integers(1, 40),
    st.one_of(st.none(), st.integers(1, 2000)),
)
def test_length_batches_cover_every_text_once_within_the_caps(lengths: list[int], rows: int, tokens: int | None):
    batches = length_batches(lengths, rows, tokens)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first: a batch pads to its own longest
    for batch in batches:
        assert 1 <= len(batch) <= rows
        if tokens is not None and len(batch) > 1:
            assert len(batch) * max(lengths[i] for i in batch) <= tokens


def _chunks(settings: Settings) -> list[Document]:
    article = load_article(SEED_ARTICLE)
    return SentenceChunker(settings.chunking).run([article_document(article)])["documents"]


def test_parallel_workers_give_each_document_its_own_vector(project_settings: Settings):
    """Two workers must hand back exactly what one worker computes (same batches, same numerics), each vector on
    its own document, although batches finish out of order and are cut from the texts sorted by length."""
    chunks = _chunks(project_settings)
    files = embedder_onnx_files(project_settings)
    kwargs = {"progress_bar": False, "max_batch_tokens": 300}  # several batches even for one article
    parallel = OnnxDocumentEmbedder(*files, workers=2, **kwargs).run(chunks)["documents"]
    serial = OnnxDocumentEmbedder(*files, workers=1, **kwargs).run(chunks)["documents"]
    assert [d.id for d in parallel] == [d.id for d in chunks]
    np.testing.assert_array_equal(np.array([d.embedding for d in parallel]), np.array([d.embedding for d in serial]))
    # and each vector belongs to its own text: it matches that text embedded alone (int8 numerics aside)
    alone = OnnxTextEmbedder(*files)
    for document in parallel:
        own = np.asarray(alone.run(text=document.content)["embedding"])
        assert float(np.dot(document.embedding, own)) > 0.97
