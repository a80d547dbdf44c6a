"""Blend two readers' weights: ``(1 - alpha) * base + alpha * tuned`` (WiSE-FT, Wortsman et al. 2022).

Why: continuing the shipped reader on hard negatives (``train_reader.py --init-from models/reader
--hard-negatives``) teaches it to refuse on-topic questions the passage does not answer, but it also starts
refusing some answerable ones. Interpolating the weights of the two fine-tunings of the same network moves
smoothly between them, so ``alpha`` is a knob between "answers more" and "refuses more" that costs no
training. It is chosen on held-out SQuAD (``evaluate_reader.py --hard-negatives`` and
``fit_verifier.py``), never on qabot's article.

    python -m training.interpolate_reader models/reader checkpoints/reader_hard/checkpoint \\
        --alpha 0.5 --out checkpoints/reader_blend

Both folders must hold the same architecture (Hugging Face layout, ``model.safetensors``); the output is a
float32 folder in the same layout (config and tokenizer from ``tuned``), ready for ``evaluate_reader.py``
and ``export_reader.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import torch
import typer
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
COPIED = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def blend(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """The float32 interpolation of two state dicts with the same keys and shapes."""
    if base.keys() != tuned.keys():
        missing = sorted(base.keys() ^ tuned.keys())[:5]
        raise ValueError(f"the two readers have different weights (e.g. {missing})")
    blended = {}
    for name, weight in base.items():
        other = tuned[name]
        if weight.shape != other.shape:
            raise ValueError(f"{name}: shape {tuple(weight.shape)} vs {tuple(other.shape)}")
        if weight.is_floating_point():
            blended[name] = ((1 - alpha) * weight.float() + alpha * other.float()).contiguous()
        else:  # integer buffers (position ids) are identical in two fine-tunings of one network
            blended[name] = other.clone()
    return blended


def main(
    base: Annotated[Path, typer.Argument(help="Reader folder at alpha 0 (the shipped reader).")],
    tuned: Annotated[Path, typer.Argument(help="Reader folder at alpha 1 (the continued one).")],
    alpha: Annotated[float, typer.Option(help="Weight of TUNED, between 0 and 1.")],
    out: Annotated[Path, typer.Option(help="Output folder (created).")],
) -> None:
    """Write the blended reader to OUT."""
    if not 0.0 <= alpha <= 1.0:
        raise typer.BadParameter("alpha must be between 0 and 1", param_hint="--alpha")
    try:
        weights = blend(load_file(base / WEIGHTS), load_file(tuned / WEIGHTS), alpha)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, out / WEIGHTS, metadata={"format": "pt"})
    for name in COPIED:
        if (tuned / name).exists():
            shutil.copyfile(tuned / name, out / name)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["dtype"] = "float32"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "blend.json").write_text(
        json.dumps({"base": str(base), "tuned": str(tuned), "alpha": alpha}, indent=2) + "\n"
    )
    typer.echo(f"wrote {out} (alpha {alpha})")


if __name__ == "__main__":
    typer.run(main)
