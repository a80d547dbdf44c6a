"""The grid behind qabot's chunk, passage and retrieval sizes: `qabot eval` quality and cost per setting.

    .venv/bin/python benchmarks/sweep_retrieval.py                  # both grids (~4 min on 2 cores)
    .venv/bin/python benchmarks/sweep_retrieval.py --grid chunking  # chunk size / overlap / passages / window
    .venv/bin/python benchmarks/sweep_retrieval.py --grid retrieval # FAISS and BM25 candidates before fusion
    .venv/bin/python benchmarks/sweep_retrieval.py --grid skip      # retrieval.dense_only_top: passages skipped

Each setting is ``config.yaml`` with only the named keys changed, answer cache off, its own index built in a
temporary folder, scored on ``tests/data/aleppo_questions.json`` by ``bot.evaluation.evaluate`` (what
``qabot eval`` prints). ms/q is the wall clock of that evaluation loop divided by the questions: relative
cost only, run it on an idle machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bot.answering import QAService
from bot.config import PROJECT_ROOT, Settings, load_settings, with_overrides
from bot.evaluation import evaluate, load_questions
from bot.indexing import build_index

QUESTIONS = PROJECT_ROOT / "tests" / "data" / "aleppo_questions.json"

# (sentences per chunk, overlap, passages read, reader window), with FAISS 6 + BM25 6 candidates
CHUNKING_GRID = [
    (3, 1, 4, 256),
    (3, 1, 3, 256),
    (3, 1, 5, 256),
    (4, 1, 3, 256),
    (4, 1, 4, 256),
    (5, 1, 3, 256),
    (6, 1, 2, 384),
    (3, 0, 4, 256),
    (2, 1, 5, 256),
    (2, 0, 5, 256),
]
# (FAISS candidates, BM25 candidates), with 3-sentence chunks overlapping by 1 and 4 passages read
RETRIEVAL_GRID = [(6, 6), (4, 4), (3, 6), (10, 10), (6, 3), (10, 4), (4, 10), (6, 0)]
# retrieval.dense_only_top, with config.yaml's retrieval otherwise (None: read every fused passage)
SKIP_GRID = [None, 2, 1]


def variant(base: Settings, index_dir: Path, **sections: dict) -> Settings:
    """``base`` with some keys of some sections replaced, its index in ``index_dir`` and the cache off."""
    overrides = {f"{section}.{key}": value for section, values in sections.items() for key, value in values.items()}
    return with_overrides(base, {**overrides, "index_dir": index_dir, "answers.cache_size": 0})


def measure(settings: Settings, questions, count_passages: bool = False) -> str:
    service = QAService.from_settings(settings)
    service.answer("What is this article about?")  # warm-up, not counted
    started = time.perf_counter()
    summary = evaluate(service, questions).summary()
    ms = (time.perf_counter() - started) / len(questions) * 1000
    row = (
        f"{summary['exact_match']:.1f} | {summary['f1']:.1f} | {summary['no_answer_accuracy']:.1f} | "
        f"{summary['retrieval_recall']:.1f} | {ms:.0f} |"
    )
    if count_passages:
        read = [len(service.answer_with_passages(q.question)[1]) for q in questions]
        row += f" {sum(read) / len(read):.2f} |"
    return row


def chunking_grid(base: Settings, questions) -> None:
    print("| sentences per chunk | overlap | passages read | reader window | EM | F1 | decision acc. | recall | ms/q |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, overlap, passages, window in CHUNKING_GRID:
        with tempfile.TemporaryDirectory() as folder:
            settings = variant(
                base,
                Path(folder),
                chunking={"sentences_per_chunk": size, "overlap_sentences": overlap, "max_chunk_chars": 2000},
                retrieval={"dense_top_k": 6, "bm25_top_k": 6, "top_k": passages},
                reader={"max_seq_length": window},
            )
            build_index(settings, progress_bar=False)
            print(f"| {size} | {overlap} | {passages} | {window} | {measure(settings, questions)}", flush=True)


def retrieval_grid(base: Settings, questions) -> None:
    print("| FAISS top | BM25 top | EM | F1 | decision acc. | recall@4 | ms/q |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        chunking = {"sentences_per_chunk": 3, "overlap_sentences": 1}
        build_index(variant(base, Path(folder), chunking=chunking), progress_bar=False)
        for dense, bm25 in RETRIEVAL_GRID:
            retrieval = {"dense_top_k": dense, "bm25_top_k": bm25, "top_k": 4, "dense_only_top": None}
            settings = variant(base, Path(folder), chunking=chunking, retrieval=retrieval)
            print(f"| {dense} | {bm25} | {measure(settings, questions)}", flush=True)


def skip_grid(base: Settings, questions) -> None:
    print("| dense_only_top | EM | F1 | decision acc. | recall@4 | ms/q | passages read |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        build_index(variant(base, Path(folder)), progress_bar=False)
        for top in SKIP_GRID:
            settings = variant(base, Path(folder), retrieval={"dense_only_top": top})
            print(f"| {top if top is not None else 'null'} | {measure(settings, questions, True)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", choices=("chunking", "retrieval", "skip", "all"), default="all")
    args = parser.parse_args()
    base = load_settings()
    questions = load_questions(QUESTIONS)
    if args.grid in ("chunking", "all"):
        chunking_grid(base, questions)
        print()
    if args.grid in ("retrieval", "all"):
        retrieval_grid(base, questions)
        print()
    if args.grid in ("skip", "all"):
        skip_grid(base, questions)


if __name__ == "__main__":
    main()
