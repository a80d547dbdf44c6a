"""Does the int8 ONNX reader lose accuracy against the float (PyTorch) reader it was exported from?

    .venv/bin/python benchmarks/check_onnx_accuracy.py                      # models/reader, 300 SQuAD questions
    .venv/bin/python benchmarks/check_onnx_accuracy.py --reader /tmp/reader_test --sample 100

(a) The article questions (tests/data/aleppo_questions.json) through the whole ``QAService`` — retrieval, reader,
    no-answer rule — once with ``reader.backend: onnx`` and once with ``torch`` (everything else from
    config.yaml; same index, built into a temporary folder). Scored by ``bot.evaluation.evaluate`` exactly
    as ``qabot eval`` does: EM/F1 over answerable questions, no-answer accuracy over all.
(b) A seeded sample of the held-out SQuAD validation split, with ``training/evaluate_reader.py``'s own building
    blocks (``validation_examples``, ``build_features``, ``predict``, ``score``): the float model through
    ``run_logits``, the int8 export through an ONNX Runtime session fed the same windows (``input_ids`` +
    ``attention_mask``; outputs ``start_logits``/``end_logits``), batched the same way.

Prints both sets of numbers and the differences (ONNX − torch, in points). Takes ~1–2 minutes on 2 idle cores
with the default sample.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(PROJECT_ROOT)]

import bot  # noqa: E402, F401  (offline environment before any model library loads)


def article_questions(reader: str) -> dict[str, dict]:
    """(a): the full service with each reader backend, scored like ``qabot eval``."""
    from bot.answering import QAService
    from bot.config import load_settings, with_overrides
    from bot.evaluation import evaluate, load_questions
    from bot.indexing import build_index

    base = load_settings()
    index_dir = Path(tempfile.mkdtemp(prefix="qabot-onnx-check-"))
    questions = load_questions(PROJECT_ROOT / "tests" / "data" / "aleppo_questions.json")
    results, answers = {}, {}
    for backend in ("onnx", "torch"):
        settings = with_overrides(
            base,
            {"index_dir": index_dir, "reader.model": reader, "reader.backend": backend, "answers.cache_size": 0},
        )
        if backend == "onnx":
            build_index(settings, force=True, progress_bar=False)
        started = time.perf_counter()
        report = evaluate(QAService.from_settings(settings), questions)
        summary = report.summary()
        summary["seconds"] = time.perf_counter() - started
        results[backend] = summary
        answers[backend] = [row["prediction"] for row in report.per_question]
    same = sum(a == b for a, b in zip(answers["onnx"], answers["torch"], strict=True))
    results["agreement"] = {"same_answer": same, "questions": len(questions)}
    return results


def run_logits_onnx(session, features, batch_size: int, pad_id: int):
    """``training.evaluate_reader.run_logits`` with an ONNX Runtime session in place of the torch model."""
    import numpy as np

    from training.evaluate_reader import padded_batches

    wants_token_types = any(i.name == "token_type_ids" for i in session.get_inputs())
    results = [None] * len(features)
    for indices, input_ids, mask in padded_batches(features, batch_size, pad_id):
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if wants_token_types:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        start, end = session.run(["start_logits", "end_logits"], feeds)
        for row, i in enumerate(indices):
            length = len(features[i].input_ids)
            results[i] = (start[row, :length].astype(np.float32), end[row, :length].astype(np.float32))
    return results


def squad_sample(
    reader: str,
    onnx_path: Path,
    sample: int,
    seed: int,
    max_seq_length: int,
    doc_stride: int,
    max_answer_tokens: int,
    batch_size: int,
) -> dict[str, dict]:
    """(b): the same SQuAD windows through the float model and the int8 export."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from bot.onnx_components import onnx_session
    from training.evaluate_reader import predict, run_logits, score, validation_examples
    from training.features import WindowSettings, build_features
    from training.squad_data import DEFAULT_SQUAD_PATH

    positives, negatives = validation_examples(DEFAULT_SQUAD_PATH, sample, seed)
    examples = positives + negatives
    tokenizer = AutoTokenizer.from_pretrained(reader)
    features = build_features(examples, tokenizer, WindowSettings(max_seq_length=max_seq_length, doc_stride=doc_stride))
    results = {}

    model = AutoModelForQuestionAnswering.from_pretrained(reader, dtype=torch.float32).eval()
    started = time.perf_counter()
    logits = run_logits(model, features, batch_size, tokenizer.pad_token_id)
    torch_seconds = time.perf_counter() - started
    torch_predictions = predict(examples, features, logits, max_answer_tokens)
    results["torch"] = {**score(positives, negatives, torch_predictions), "seconds": torch_seconds}
    del model

    session = onnx_session(onnx_path)
    started = time.perf_counter()
    logits = run_logits_onnx(session, features, batch_size, tokenizer.pad_token_id)
    onnx_seconds = time.perf_counter() - started
    onnx_predictions = predict(examples, features, logits, max_answer_tokens)
    results["onnx"] = {**score(positives, negatives, onnx_predictions), "seconds": onnx_seconds}

    same = sum(a.text == b.text for a, b in zip(torch_predictions[: len(positives)], onnx_predictions, strict=False))
    results["agreement"] = {"same_span": same, "questions": len(positives), "windows": len(features)}
    return results


def _print_comparison(title: str, torch_row: dict, onnx_row: dict, keys: list[str]) -> None:
    print(f"\n{title}")
    print("| metric | torch (float) | onnx (int8) | onnx − torch |")
    print("|---|---:|---:|---:|")
    for key in keys:
        t, o = torch_row.get(key), onnx_row.get(key)
        if isinstance(t, (int, float)) and isinstance(o, (int, float)):
            print(f"| {key} | {t:.2f} | {o:.2f} | {o - t:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", help="reader folder (HF layout + onnx/); default: config.yaml's reader.model")
    parser.add_argument("--sample", type=int, default=300, help="SQuAD validation questions (0 skips part b)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-seq-length", type=int, default=256, help="as the bot's reader.max_seq_length")
    parser.add_argument("--doc-stride", type=int, default=128, help="as training/evaluate_reader.py")
    parser.add_argument("--max-answer-tokens", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-article", action="store_true", help="only part (b)")
    args = parser.parse_args()

    from bot.config import load_settings
    from bot.models import reader_model

    settings = load_settings()
    reader = str(Path(args.reader).resolve()) if args.reader else reader_model(settings)
    onnx_path = Path(reader) / settings.reader.onnx_file
    if not onnx_path.exists():
        sys.exit(f"{onnx_path} does not exist: export the reader first (python -m training.export_reader)")
    print(f"reader: {reader}\nonnx:   {onnx_path}")

    if not args.skip_article:
        a = article_questions(reader)
        _print_comparison(
            f"(a) article questions through QAService ({a['onnx']['answerable']} answerable, "
            f"{a['onnx']['unanswerable']} unanswerable); same answer text on {a['agreement']['same_answer']}"
            f"/{a['agreement']['questions']}",
            a["torch"],
            a["onnx"],
            ["exact_match", "f1", "no_answer_accuracy", "retrieval_recall", "seconds"],
        )
    if args.sample:
        b = squad_sample(
            reader,
            onnx_path,
            args.sample,
            args.seed,
            args.max_seq_length,
            args.doc_stride,
            args.max_answer_tokens,
            args.batch_size,
        )
        _print_comparison(
            f"(b) SQuAD held-out validation sample ({b['agreement']['questions']} questions + "
            f"{b['torch']['negatives']} negatives, {b['agreement']['windows']} windows of ≤{args.max_seq_length} "
            f"tokens); same best span on {b['agreement']['same_span']}/{b['agreement']['questions']}",
            b["torch"],
            b["onnx"],
            ["exact_match", "f1", "no_answer_precision", "no_answer_recall", "abstained_on_answerable_pct", "seconds"],
        )
        print(
            f"\nSQuAD F1: torch {b['torch']['f1']:.2f}, onnx int8 {b['onnx']['f1']:.2f}, "
            f"difference {b['onnx']['f1'] - b['torch']['f1']:+.2f} points"
        )


if __name__ == "__main__":
    main()
