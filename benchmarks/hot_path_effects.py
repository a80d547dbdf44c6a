"""The measurements behind qabot's hot-path choices, each on its own (README "What made it fast").

    .venv/bin/python benchmarks/hot_path_effects.py

1. ONNX Runtime thread spinning: the reader's call right after an embedder call, with both sessions spinning
   (ORT's default) and with spinning off (``bot.onnx_components.onnx_session``).
2. Reader call size: ONNX Runtime time per window for calls of 1, 4, 8 and 16 windows.
3. Haystack's copy of the question vector between pipeline components: a list of 384 floats against the
   float32 array that ``OnnxTextEmbedder`` hands on.
4. Haystack's copy of documents between pipeline components (``Pipeline.run`` deep-copies every component's
   inputs): 4 of the article's passages with their vectors as lists of 384 floats (as the pgvector store reads
   them) against the same passages without (``bot.stores.pgvector_store._without_vectors``); and the article's
   chunks as the chunker hands them to the embedder in the indexing pipeline (``bot.indexing._chunks_and_vectors``
   runs the two components itself instead), per chunk.

Windows are random token ids of 134 tokens (the average padded reader window on our article), so the times
are the model's cost, not any particular question's. Run it on an idle machine.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import onnxruntime
from haystack.core.pipeline.utils import _deepcopy_with_exceptions

from bot.articles import load_articles
from bot.chunking import SentenceChunker, article_document
from bot.config import load_settings
from bot.models import embedder_onnx_files, onnx_file
from bot.onnx_components import onnx_session

WINDOW_TOKENS = 134
REPEATS = 20


def feeds(session, rows: int, tokens: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ids = rng.integers(1000, 20000, size=(rows, tokens)).astype(np.int64)
    names = {i.name for i in session.get_inputs()}
    out = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in names:
        out["token_type_ids"] = np.zeros_like(ids)
    return out


def spinning_session(path):
    """ORT's defaults (spinning on), as a session without ``onnx_session``'s settings would have."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def reader_after_embedder_ms(make_session, reader_path, embedder_path, rng) -> float:
    reader, embedder = make_session(reader_path), make_session(embedder_path)
    reader_feeds, embedder_feeds = feeds(reader, 4, WINDOW_TOKENS, rng), feeds(embedder, 1, 12, rng)
    for _ in range(3):
        embedder.run(None, embedder_feeds)
        reader.run(None, reader_feeds)
    total = 0.0
    for _ in range(REPEATS):
        embedder.run(None, embedder_feeds)
        time.sleep(0.005)  # retrieval runs between the two calls
        started = time.perf_counter()
        reader.run(None, reader_feeds)
        total += time.perf_counter() - started
    return total / REPEATS * 1000


def per_window_ms(session, windows: int, rng) -> float:
    call = feeds(session, windows, WINDOW_TOKENS, rng)
    session.run(None, call)
    started = time.perf_counter()
    for _ in range(REPEATS):
        session.run(None, call)
    return (time.perf_counter() - started) / REPEATS / windows * 1000


def copy_us(value, repeats: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        _deepcopy_with_exceptions(value)
    return (time.perf_counter() - started) / repeats * 1e6


def main() -> None:
    settings = load_settings()
    reader_path = onnx_file(settings)
    embedder_path, _ = embedder_onnx_files(settings)
    rng = np.random.default_rng(0)

    print("1. reader call (4 windows) right after an embedder call")
    spinning = reader_after_embedder_ms(spinning_session, reader_path, embedder_path, rng)
    quiet = reader_after_embedder_ms(onnx_session, reader_path, embedder_path, rng)
    print(f"   spinning on (ORT default): {spinning:6.1f} ms")
    print(f"   spinning off (qabot):      {quiet:6.1f} ms")

    print(f"2. reader time per {WINDOW_TOKENS}-token window by call size (spinning off)")
    reader = onnx_session(reader_path)
    for windows in (1, 4, 8, 16):
        print(f"   {windows:2} windows per call: {per_window_ms(reader, windows, rng):5.1f} ms per window")

    print("3. Haystack's copy of the question vector between components")
    vector = rng.standard_normal(384).astype(np.float32)
    print(f"   list of 384 floats:   {copy_us(vector.tolist()):7.0f} µs")
    print(f"   float32 numpy array:  {copy_us(vector):7.0f} µs")

    print("4. Haystack's copy of documents between components")
    articles = load_articles(settings.resolve(settings.articles_dir))
    chunks = SentenceChunker(settings.chunking).run([article_document(a) for a in articles])["documents"]
    passages = chunks[:4]
    with_vectors = [replace(p, embedding=rng.standard_normal(384).tolist()) for p in passages]
    print(f"   4 passages with their vectors: {copy_us(with_vectors):7.0f} µs")
    print(f"   4 passages without:            {copy_us(passages):7.0f} µs")
    print(f"   {len(chunks)} chunks of the article:      {copy_us(chunks) / len(chunks):7.1f} µs a chunk")


if __name__ == "__main__":
    main()
