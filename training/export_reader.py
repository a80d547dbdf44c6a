"""Export a trained reader checkpoint to ``models/reader`` (what the product loads).

* ``model.safetensors`` in float16 (about 45 MB) + config + tokenizer, Hugging Face layout: loads with
  ``TransformersExtractiveReader(model="models/reader")`` and ``HF_HUB_OFFLINE=1``; ``config.json`` says
  float32 so it is up-cast on load (CPU matmuls in float16 are slow).
* ``onnx/model_int8.onnx``: the same weights exported to ONNX (opset 17, dynamic batch and sequence axes)
  and quantized with ONNX Runtime's dynamic int8 quantization (weights int8 per output channel,
  activations quantized per call): the bot's fast path.

    python -m training.export_reader checkpoints/reader/checkpoint models/reader
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import torch
import typer
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

ONNX_SUBDIR = "onnx"
ONNX_INT8 = "model_int8.onnx"


class _LogitsOnly(torch.nn.Module):
    """The QA model with plain tensor outputs, which is what the ONNX exporter wants."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return output.start_logits, output.end_logits


def export_hf(checkpoint: Path, out: Path) -> None:
    """Write the float16 Hugging Face folder (weights, config, tokenizer)."""
    model = AutoModelForQuestionAnswering.from_pretrained(checkpoint, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    config_path = out / "config.json"
    import json

    config = json.loads(config_path.read_text())
    config["dtype"] = "float32"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def export_onnx_int8(model_dir: Path) -> Path:
    """Export ``model_dir`` to ONNX and quantize it to int8; returns the int8 file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()
    target_dir = model_dir / ONNX_SUBDIR
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        fp32_path = Path(scratch) / "model_fp32.onnx"
        sample_ids = torch.ones((2, 32), dtype=torch.long)
        torch.onnx.export(
            _LogitsOnly(model),
            (sample_ids, torch.ones_like(sample_ids)),
            str(fp32_path),
            input_names=["input_ids", "attention_mask"],
            output_names=["start_logits", "end_logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "start_logits": {0: "batch", 1: "sequence"},
                "end_logits": {0: "batch", 1: "sequence"},
            },
            opset_version=17,
            dynamo=False,
        )
        int8_path = target_dir / ONNX_INT8
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    return int8_path


def main(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint folder.")],
    out: Annotated[Path, typer.Argument(help="Export folder, e.g. models/reader.")] = Path("models/reader"),
) -> None:
    """Export weights (float16 safetensors) and the int8 ONNX fast path."""
    staging = out.with_name(out.name + ".export-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    export_hf(checkpoint, staging)
    int8 = export_onnx_int8(staging)
    for keep in ("README.md", "metrics.json"):
        if (out / keep).exists():
            shutil.copy2(out / keep, staging / keep)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    sizes = {p.name: p.stat().st_size for p in out.rglob("*") if p.is_file()}
    typer.echo(f"exported to {out}: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))
    typer.echo(f"int8 ONNX: {out / ONNX_SUBDIR / int8.name}")


if __name__ == "__main__":
    typer.run(main)
