"""Evaluate a reader checkpoint or export on the held-out SQuAD articles; print a table, write metrics.json.

* Exact match and token F1 with the official SQuAD v1.1 normalisation, over the by-article validation split
  (best span over all windows of a paragraph, decoded by ``bot.span_decoding`` exactly as the bot serves).
* No-answer precision/recall on held-out negatives (validation questions paired with a paragraph of another
  validation article): the reader abstains when its best span does not beat its own window's null score.

    python -m training.evaluate_reader models/reader --out models/reader/metrics.json
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from tqdm import tqdm
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from bot.span_decoding import DEFAULT_MAX_ANSWER_TOKENS, decode_window
from bot.squad_metrics import best_over_golds, exact_match, token_f1
from training.features import Feature, WindowSettings, build_features
from training.hard_negatives import build_hard_negatives
from training.squad_data import DEFAULT_SQUAD_PATH, QAExample, load_articles, make_negatives, split_by_article
from training.train_reader import resolve_device


@dataclass(frozen=True)
class Prediction:
    """An example's best span over its windows, as the served readers pick it (``bot.span_decoding``)."""

    text: str
    span_score: float  # start + end logit of the best span
    null_score: float  # start + end logit at [CLS] of the window that span is in

    @property
    def margin(self) -> float:
        """What the served confidence is computed from: span minus its own window's null."""
        return self.span_score - self.null_score


def validation_examples(
    squad: Path, sample: int | None, seed: int, hard: bool = False
) -> tuple[list[QAExample], list[QAExample]]:
    """Held-out positives (optionally a seeded sample) and as many held-out negatives as half of them:
    other-article pairings, or with ``hard`` the on-topic mix of ``training.hard_negatives``."""
    split = split_by_article(load_articles(squad))
    positives = split.validation
    if sample is not None and sample < len(positives):
        positives = random.Random(seed).sample(positives, sample)
    if hard:
        return positives, build_hard_negatives(split.validation, max(1, len(positives) // 2), seed=seed + 7)
    negatives = make_negatives(split.validation, max(1, len(positives) // 2), seed=seed + 7)
    return positives, negatives


def padded_batches(
    features: list[Feature], batch_size: int, pad_id: int
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """(feature indices, input_ids, attention_mask) per batch, windows sorted by length so padding stays small."""
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    for begin in range(0, len(order), batch_size):
        indices = order[begin : begin + batch_size]
        width = max(len(features[i].input_ids) for i in indices)
        input_ids = np.full((len(indices), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        for row, i in enumerate(indices):
            length = len(features[i].input_ids)
            input_ids[row, :length] = features[i].input_ids
            mask[row, :length] = 1
        yield indices, input_ids, mask


def run_logits(
    model, features: list[Feature], batch_size: int, pad_id: int, device: torch.device | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start/end logits per window (``padded_batches``), on ``device`` (default: the CPU)."""
    device = device or torch.device("cpu")
    results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(features)
    batches = padded_batches(features, batch_size, pad_id)
    for indices, input_ids, mask in tqdm(batches, total=-(-len(features) // batch_size), desc="reader", mininterval=5):
        with torch.inference_mode():
            output = model(
                input_ids=torch.from_numpy(input_ids).to(device), attention_mask=torch.from_numpy(mask).to(device)
            )
        for row, i in enumerate(indices):
            length = len(features[i].input_ids)
            results[i] = (
                output.start_logits[row, :length].float().cpu().numpy(),
                output.end_logits[row, :length].float().cpu().numpy(),
            )
    return results  # type: ignore[return-value]


def predict(
    examples: list[QAExample], features: list[Feature], logits, max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS
) -> list[Prediction]:
    """Best span per example across its windows, decoded exactly as the served readers decode them.

    Each window's spans are scored against that window's own null (``bot.span_decoding``), and the example's
    answer is the span with the highest margin. An example without any span gets margin -1e9.
    """
    best: dict[int, Prediction] = {}
    for feature, (start, end) in zip(features, logits, strict=True):
        passage = [i for i, span in enumerate(feature.offsets) if span is not None]
        decoded = decode_window(start, end, passage, feature.offsets, max_answer_tokens, top_n=1)
        previous = best.get(feature.example_index)
        if not decoded.spans:
            if previous is None:
                best[feature.example_index] = Prediction("", -1e9, 0.0)
            continue
        span = decoded.spans[0]
        if previous is None or span.margin > previous.margin:
            text = examples[feature.example_index].context[span.char_start : span.char_end]
            best[feature.example_index] = Prediction(text, span.margin + decoded.null_logit, decoded.null_logit)
    return [best[i] for i in range(len(examples))]


def score(
    positives: list[QAExample], negatives: list[QAExample], predictions: list[Prediction], null_margin: float = 0.0
) -> dict:
    """SQuAD EM/F1 on positives; no-answer precision/recall over positives + negatives."""
    pos_preds, neg_preds = predictions[: len(positives)], predictions[len(positives) :]
    pairs = list(zip(positives, pos_preds, strict=True))
    em = 100 * np.mean([best_over_golds(exact_match, p.text, ex.answers) for ex, p in pairs])
    f1 = 100 * np.mean([best_over_golds(token_f1, p.text, ex.answers) for ex, p in pairs])

    def abstains(p: Prediction) -> bool:
        return -p.margin > null_margin

    true_abstain = sum(abstains(p) for p in neg_preds)
    false_abstain = sum(abstains(p) for p in pos_preds)
    predicted = true_abstain + false_abstain
    by_kind: dict[str, list[bool]] = {}
    for example, prediction in zip(negatives, neg_preds, strict=True):  # qid "<source>__<kind>"
        by_kind.setdefault(example.qid.rpartition("__")[2], []).append(abstains(prediction))
    return {
        "questions": len(positives),
        "negatives": len(negatives),
        "exact_match": round(float(em), 2),
        "f1": round(float(f1), 2),
        "no_answer_precision": round(100 * true_abstain / predicted, 2) if predicted else 0.0,
        "no_answer_recall": round(100 * true_abstain / len(negatives), 2) if negatives else 0.0,
        "abstained_on_answerable_pct": round(100 * false_abstain / len(positives), 2),
        "no_answer_recall_by_kind": {
            kind: f"{round(100 * sum(refused) / len(refused), 1)} % of {len(refused)}"
            for kind, refused in sorted(by_kind.items())
        },
    }


def fit_calibration(
    positives: list[QAExample], predictions: list[Prediction], iterations: int = 50
) -> dict[str, float]:
    """Platt scaling: P(answer is right) = sigmoid(factor * (span - null) + bias), fitted by Newton's method.

    "Right" means token F1 >= 0.5 for an answerable question; any answer to a negative is wrong. The bot
    uses these two numbers so that its confidence reads as a probability and 0.5 is a natural threshold.
    """
    margins = np.clip([p.margin for p in predictions], -30.0, 30.0).astype(np.float64)
    labels = np.zeros_like(margins)
    for i, example in enumerate(positives):
        labels[i] = best_over_golds(token_f1, predictions[i].text, example.answers) >= 0.5
    features = np.stack([margins, np.ones_like(margins)], axis=1)
    weights = np.array([0.25, 0.0])
    for _ in range(iterations):
        probabilities = 1 / (1 + np.exp(-features @ weights))
        gradient = features.T @ (probabilities - labels)
        hessian = (features * (probabilities * (1 - probabilities))[:, None]).T @ features + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step / max(1.0, float(np.abs(step).max()))  # damped Newton: separable data would diverge
    return {"factor": round(float(weights[0]), 4), "bias": round(float(weights[1]), 4)}


def main(
    model_dir: Annotated[Path, typer.Argument(help="A checkpoint or exported reader folder (HF layout).")],
    out: Annotated[Path | None, typer.Option(help="Write metrics.json here.")] = None,
    squad: Path = DEFAULT_SQUAD_PATH,
    sample: Annotated[int | None, typer.Option(help="Evaluate on a seeded sample of N validation questions.")] = None,
    max_seq_length: int = 256,
    doc_stride: int = 128,
    max_answer_tokens: int = 30,
    batch_size: int = 64,
    seed: int = 7,
    hard_negatives: Annotated[bool, typer.Option(help="Negatives from training.hard_negatives (on-topic).")] = False,
    threads: int = 2,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (cuda when available).")] = "cpu",
) -> None:
    """Evaluate ``model_dir`` on the held-out validation articles."""
    torch.set_num_threads(threads)
    target = resolve_device(device)
    started = time.time()
    positives, negatives = validation_examples(squad, sample, seed, hard_negatives)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).to(target).eval()
    examples = positives + negatives
    features = build_features(examples, tokenizer, WindowSettings(max_seq_length=max_seq_length, doc_stride=doc_stride))
    logits = run_logits(model, features, batch_size, tokenizer.pad_token_id, target)
    predictions = predict(examples, features, logits, max_answer_tokens)
    metrics = score(positives, negatives, predictions)
    metrics["calibration"] = fit_calibration(positives, predictions)
    metrics.update(
        {
            "model": str(model_dir),
            "split": "SQuAD v1.1 train, 40 held-out articles (training.squad_data.split_by_article, seed 13)"
            + (", hard negatives (training.hard_negatives)" if hard_negatives else ""),
            "max_seq_length": max_seq_length,
            "doc_stride": doc_stride,
            "max_answer_tokens": max_answer_tokens,
            "seconds": round(time.time() - started, 1),
        }
    )
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        typer.echo(f"{key:<{width}}  {value}")
    if out:
        out.write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
