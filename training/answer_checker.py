"""Train the answer checker: a small cross-encoder that reads (question, answer, the answer's sentence) and
says whether the span answers the question (issue 7; a "read, then verify" second opinion).

The verifier's lexical features cannot see a relation that is wrong while every word is there ("Who leads the
Free Syrian Army?" over "the FSA, aided by ... Jaysh al Fateh ... a supply line leading into the city"). The
reader's own no-answer score was trained on whole paragraphs; continuing it on hard negatives traded right
answers for refusals at the same rate whatever the mix (models/reader/README.md). The checker is a separate
judgement of the one span the reader chose, trained on the reader's own outputs, right and wrong:

1. ``rows``: the shipped reader reads SQuAD *training* articles only (the 40 held-out articles stay for the
   verifier's fit and every report): answerable questions over their paragraph and the hard negatives of
   ``training.hard_negatives`` (other paragraph of the same article, answer sentence cut, swapped name or
   number, opposite word, unrelated paragraph). Each best span becomes a row with the sentence(s) holding it
   (``bot.chunking.sentences_around``, as served), labelled right when it is answerable and F1 >= 0.5 (the
   verifier's definition). For answerable questions the reader got wrong, the gold span in its own sentence is
   added as a right row, so that the checker sees the right answer the reader missed.
2. ``train``: the reader's encoder (``models/reader``) with a one-logit head on [CLS], fine-tuned on the rows
   with binary cross-entropy; the held-out rows (the same construction on a sample of the held-out articles)
   are scored every epoch: AUROC of the checker against the reader's margin on the same spans.
3. ``export``: int8 ONNX (dynamic quantisation, as the reader) beside a copy of the tokenizer, for
   ``bot.answer_checker``.

    python -m training.answer_checker rows --work /work/artifacts/checker
    python -m training.answer_checker train --work /work/artifacts/checker
    python -m training.answer_checker export --work /work/artifacts/checker --out models/reader/checker
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from tqdm import tqdm
from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer

from bot.answer_checker import MAX_TOKENS, checker_pair
from bot.chunking import sentence_spans, sentences_around
from bot.evaluation import auroc
from bot.squad_metrics import best_over_golds, token_f1
from training.evaluate_reader import predict, run_logits
from training.features import WindowSettings, build_features
from training.hard_negatives import antonym_question, build_hard_negatives, perturb_question
from training.squad_data import DEFAULT_SQUAD_PATH, QAExample, load_articles, split_by_article

READER = Path(__file__).resolve().parents[1] / "models" / "reader"
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def sentence_of(context: str, start: int, end: int) -> str:
    """The sentence(s) of ``context`` holding ``start:end``, split as the chunker splits them."""
    spans = sentence_spans(context) or [(0, len(context))]
    first, last = sentences_around([s for s, _ in spans], [e for _, e in spans], start, end)
    return context[first:last]


def reader_rows(model_dir: Path, examples: list[QAExample], kinds: list[str], batch_size: int = 64) -> list[dict]:
    """One row per example from the reader's best span (see the module docstring), plus gold rows."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()
    features = build_features(examples, tokenizer, WindowSettings())
    predictions = predict(examples, features, run_logits(model, features, batch_size, tokenizer.pad_token_id))
    rows = []
    for example, kind, prediction in zip(examples, kinds, predictions, strict=True):
        f1 = best_over_golds(token_f1, prediction.text, example.answers) if example.answers else 0.0
        if prediction.char_start >= 0 and prediction.text.strip():
            rows.append(
                {
                    "question": example.question,
                    "answer": prediction.text,
                    "sentence": sentence_of(example.context, prediction.char_start, prediction.char_end),
                    "label": int(bool(example.answers) and f1 >= 0.5),
                    "margin": prediction.margin,
                    "kind": kind,
                    "source": "reader",
                }
            )
        if example.answers and f1 < 0.5 and example.answer_start is not None:
            end = example.answer_start + len(example.answers[0])
            rows.append(
                {
                    "question": example.question,
                    "answer": example.answers[0],
                    "sentence": sentence_of(example.context, example.answer_start, end),
                    "label": 1,
                    "margin": None,
                    "kind": kind,
                    "source": "gold",
                }
            )
    return rows


def _draw(examples: list[QAExample], positives: int, negatives: int, seed: int) -> tuple[list[QAExample], list[str]]:
    rng = random.Random(seed)
    drawn = rng.sample(examples, min(positives, len(examples)))
    hard = build_hard_negatives(examples, negatives, seed=seed + 1)
    kinds = ["answerable"] * len(drawn) + [ex.qid.rsplit("__", 1)[-1] for ex in hard]
    return drawn + hard, kinds


@app.command()
def rows(
    work: Annotated[Path, typer.Option(help="Folder for rows and checkpoints.")],
    squad: Path = DEFAULT_SQUAD_PATH,
    reader: Path = READER,
    train_questions: int = 8000,
    train_negatives: int = 5000,
    heldout_questions: int = 1000,
    heldout_negatives: int = 600,
    seed: int = 29,
    threads: int = 2,
) -> None:
    """Read the drawn questions with the reader and write WORK/train_rows.jsonl and WORK/heldout_rows.jsonl."""
    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    split = split_by_article(load_articles(squad))
    for name, examples, positives, negatives in (
        ("heldout", split.validation, heldout_questions, heldout_negatives),
        ("train", split.train, train_questions, train_negatives),
    ):
        drawn, kinds = _draw(examples, positives, negatives, seed)
        made = reader_rows(reader, drawn, kinds)
        with (work / f"{name}_rows.jsonl").open("w", encoding="utf-8") as handle:
            for row in made:
                handle.write(json.dumps(row) + "\n")
        right = sum(row["label"] for row in made)
        typer.echo(f"{name}: {len(made)} rows from {len(drawn)} questions, {right} right")


def minimal_pairs(examples: list[QAExample], rng: random.Random) -> list[dict]:
    """For each answerable example, its question with one name/number/year swapped (``perturb_question``) or one
    word turned into its opposite (``antonym_question``), over the *same* answer and sentence: label 0. The
    sentence still holds every other word of the question, so only the swapped word tells the pair apart."""
    article_texts: dict[str, str] = {}
    for example in examples:
        if example.context not in article_texts.get(example.title, ""):
            article_texts[example.title] = article_texts.get(example.title, "") + "\n" + example.context
    made = []
    for example in examples:
        if example.answer_start is None:
            continue
        swap = antonym_question(example) or perturb_question(example, article_texts[example.title], rng)
        if swap is None:
            continue
        end = example.answer_start + len(example.answers[0])
        sentence = sentence_of(example.context, example.answer_start, end)
        for question, label, kind in ((swap[0], 0, "pair_swapped"), (example.question, 1, "pair_original")):
            made.append(
                {"question": question, "answer": example.answers[0], "sentence": sentence, "label": label,
                 "margin": None, "kind": kind, "source": "pair"}
            )  # fmt: skip
    return made


@app.command()
def pairs(
    work: Annotated[Path, typer.Option(help="Folder for rows and checkpoints.")],
    squad: Path = DEFAULT_SQUAD_PATH,
    train_questions: int = 16000,
    heldout_questions: int = 1000,
    seed: int = 29,
) -> None:
    """Write WORK/train_pairs.jsonl and WORK/heldout_pairs.jsonl (``minimal_pairs`` of the questions that ``rows``
    draws with the same seed; no reader needed)."""
    split = split_by_article(load_articles(squad))
    for name, examples, positives in (
        ("heldout", split.validation, heldout_questions),
        ("train", split.train, train_questions),
    ):
        drawn = random.Random(seed).sample(examples, min(positives, len(examples)))
        made = minimal_pairs(drawn, random.Random(seed + 2))
        with (work / f"{name}_pairs.jsonl").open("w", encoding="utf-8") as handle:
            for row in made:
                handle.write(json.dumps(row) + "\n")
        typer.echo(f"{name}: {len(made) // 2} minimal pairs from {len(drawn)} questions")


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _batches(encoded: list[list[int]], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Index batches of similar length (less padding); shuffled when ``rng`` is given."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _tensors(encoded: list[list[int]], indices: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(encoded[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
        mask[row, : len(encoded[i])] = 1
    return ids, mask


def encode_rows(tokenizer, rows: list[dict]) -> list[list[int]]:
    pairs = [checker_pair(row["question"], row["answer"], row["sentence"]) for row in rows]
    encoded = tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation="only_second", max_length=MAX_TOKENS)
    return encoded["input_ids"]


def checker_logits(model, encoded: list[list[int]], pad_id: int, batch_size: int = 128) -> np.ndarray:
    out = np.zeros(len(encoded))
    model.eval()
    with torch.inference_mode():
        for indices in _batches(encoded, batch_size, None):
            ids, mask = _tensors(encoded, indices, pad_id)
            out[indices] = model(input_ids=ids, attention_mask=mask).logits[:, 0].float().numpy()
    return out


def report(rows: list[dict], logits: np.ndarray) -> dict:
    """AUROC of the checker and of the reader's margin over the reader's spans (right vs wrong), and of the
    checker on the minimal pairs (original vs swapped question)."""
    reader = [i for i, row in enumerate(rows) if row["source"] == "reader"]
    labels = np.array([rows[i]["label"] for i in reader], dtype=float)
    margins = np.array([rows[i]["margin"] for i in reader], dtype=float)
    out = {
        "reader_spans": len(reader),
        "auroc_checker": round(100 * auroc(logits[reader], labels), 2),
        "auroc_reader_margin": round(100 * auroc(margins, labels), 2),
    }
    paired = [i for i, row in enumerate(rows) if row["source"] == "pair"]
    if paired:
        pair_labels = np.array([rows[i]["label"] for i in paired], dtype=float)
        out["auroc_checker_pairs"] = round(100 * auroc(logits[paired], pair_labels), 2)
    return out


@app.command()
def train(
    work: Annotated[Path, typer.Option(help="Folder with the rows; the model goes to WORK/checker.")],
    reader: Path = READER,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 3e-5,
    warmup: float = 0.06,
    seed: int = 31,
    threads: int = 2,
    pairs: Annotated[bool, typer.Option(help="Also train on WORK/train_pairs.jsonl when it exists.")] = True,
    out_name: str = "checker",
) -> None:
    """Fine-tune the checker on WORK/train_rows.jsonl; report on WORK/heldout_rows.jsonl after each epoch."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(reader)
    model = AutoModelForSequenceClassification.from_pretrained(reader, num_labels=1, dtype=torch.float32)
    train_rows, heldout_rows = _read_rows(work / "train_rows.jsonl"), _read_rows(work / "heldout_rows.jsonl")
    if pairs and (work / "train_pairs.jsonl").exists():
        train_rows += _read_rows(work / "train_pairs.jsonl")
    if (work / "heldout_pairs.jsonl").exists():
        heldout_rows += _read_rows(work / "heldout_pairs.jsonl")
    train_ids, heldout_ids = encode_rows(tokenizer, train_rows), encode_rows(tokenizer, heldout_rows)
    labels = torch.tensor([float(row["label"]) for row in train_rows])
    steps = epochs * math.ceil(len(train_ids) / batch_size)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate)
    warm = max(1, int(warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (steps - step) / max(1, steps - warm)))
    )
    typer.echo(f"{len(train_rows)} rows ({int(labels.sum())} right), {steps} steps; held-out {len(heldout_rows)}")
    typer.echo(f"before: {report(heldout_rows, checker_logits(model, heldout_ids, tokenizer.pad_token_id))}")
    started = time.time()
    for epoch in range(epochs):
        model.train()
        batches = _batches(train_ids, batch_size, rng)
        for indices in tqdm(batches, desc=f"epoch {epoch + 1}", mininterval=30):
            ids, mask = _tensors(train_ids, indices, tokenizer.pad_token_id)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[indices])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        metrics = report(heldout_rows, checker_logits(model, heldout_ids, tokenizer.pad_token_id))
        typer.echo(f"epoch {epoch + 1} ({time.time() - started:.0f} s): {metrics}")
    model.save_pretrained(work / out_name)
    tokenizer.save_pretrained(work / out_name)
    (work / out_name / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


@app.command()
def export(
    work: Annotated[Path, typer.Option(help="Folder holding WORK/checker from `train`.")],
    out: Annotated[Path, typer.Option(help="Where model_int8.onnx and tokenizer.json go.")],
    name: Annotated[str, typer.Option(help="The trained model's folder in WORK (train --out-name).")] = "checker",
) -> None:
    """int8 ONNX of the trained checker (dynamic quantisation, per-channel weights, like the reader's)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForSequenceClassification.from_pretrained(work / name, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(work / name)
    sample = tokenizer("who?", "it [SEP] it is.", return_tensors="pt")
    float_path = work / f"{name}_float.onnx"
    torch.onnx.export(
        model,
        (sample["input_ids"], sample["attention_mask"]),
        str(float_path),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(float_path), str(out / "model_int8.onnx"), per_channel=True, weight_type=QuantType.QInt8)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    typer.echo(f"wrote {out / 'model_int8.onnx'}")


if __name__ == "__main__":
    app()
