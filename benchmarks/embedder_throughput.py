"""How the int8 ONNX embedder is best run for bulk indexing: threads, parallel calls, batch shape.

    .venv/bin/python benchmarks/embedder_throughput.py --articles /work/artifacts/corpus/articles-40 [--sample 1024]
        [--reps 3] [--variants shipped,old]

The chunks of every article in ``--articles`` (default: config.yaml's ``articles_dir``), chunked as ``qabot index``
chunks them, a seeded sample of ``--sample``; each variant embeds the same sample, the variants interleaved
``--reps`` times, after one warm-up call each. Per variant, the median over the repetitions of wall-clock chunks/s
and of chunks per CPU second of this process (user + system, all threads): the second is the number to compare on a
machine busy with other work, where wall clock mostly measures the other work. Tokenizing is included (once
per text, as in indexing); chunking, the model load and the Haystack pipeline are not.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's bot package

from bot.articles import load_articles
from bot.chunking import SentenceChunker, article_document
from bot.config import load_settings
from bot.models import embedder_onnx_files
from bot.onnx_components import OnnxDocumentEmbedder, _OnnxSentenceEncoder, available_cores
from bot.pipeline import build_document_embedder

SEED = 13
CORES = available_cores()
# name: (intra-op threads per call, parallel calls, max texts per batch, max padded tokens per batch)
VARIANTS: dict[str, tuple[int | None, int, int, int | None]] = {
    "shipped": (1, CORES, 32, 512),  # what build_document_embedder builds (checked in main)
    "old": (None, 1, 32, None),  # before: one session on every core, length-sorted batches of 32
    "threads-512": (None, 1, 32, 512),  # one session on every core, the shipped batches
    "1-core-512": (1, 1, 32, 512),  # one single-threaded call at a time: per-core efficiency
    "parallel-32": (1, CORES, 32, None),  # parallel single-threaded calls, batches of 32
    "parallel-1024": (1, CORES, 32, 1024),
    "parallel-256": (1, CORES, 32, 256),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=Path, help="folder of article files (default: config.yaml's)")
    parser.add_argument("--sample", type=int, default=1024, help="chunks embedded per variant and repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    names = args.variants.split(",")
    if unknown := [n for n in names if n not in VARIANTS]:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    settings = load_settings()
    shipped = build_document_embedder(settings)  # what `qabot index` runs (config's batch size), not the defaults
    assert isinstance(shipped, OnnxDocumentEmbedder), "embedder.backend must be onnx"
    assert VARIANTS["shipped"] == (1, shipped.workers, shipped.batch_size, shipped.max_batch_tokens)

    chunker = SentenceChunker(settings.chunking)
    articles = load_articles(args.articles or settings.resolve(settings.articles_dir))
    texts = [c.content or "" for a in articles for c in chunker.run([article_document(a)])["documents"]]
    texts = random.Random(SEED).sample(texts, min(args.sample, len(texts)))
    onnx_path, tokenizer_path = embedder_onnx_files(settings)
    encoders = {}
    for name in names:
        threads, workers, _, _ = VARIANTS[name]
        encoders[name] = _OnnxSentenceEncoder(onnx_path, tokenizer_path, 256, threads, workers)
        encoders[name].encode(texts[:8], 8)  # warm-up
    print(f"{len(texts)} chunks from {len(articles)} articles, {CORES} cores, load average {os.getloadavg()[0]:.2f}")
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.reps):
        for name in names:
            _, _, batch_size, max_tokens = VARIANTS[name]
            cpu, wall = cpu_seconds(), time.perf_counter()
            encoders[name].encode(texts, batch_size, False, max_tokens)
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(cpu_seconds() - cpu)
            print(f"  rep {rep + 1} {name}: {walls[name][-1]:.2f} s wall, {cpus[name][-1]:.2f} s CPU", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}\n")
    print("| variant | threads per call | parallel calls | batch | chunks/s (wall) | chunks per CPU s |")
    print("|---|---:|---:|---|---:|---:|")
    for name in names:
        threads, workers, batch_size, max_tokens = VARIANTS[name]
        batch = f"≤{batch_size} texts" + (f", ≤{max_tokens} tokens" if max_tokens else "")
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        rates = f"{len(texts) / wall:.1f} | {len(texts) / cpu:.1f}"
        print(f"| {name} | {threads or CORES} | {workers} | {batch} | {rates} |")


if __name__ == "__main__":
    main()
