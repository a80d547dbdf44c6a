"""Export the packaged all-MiniLM-L6-v2 sentence encoder to int8 ONNX for qabot's ONNX Runtime fast path.

Writes ``models/embedder/``: ``model_int8.onnx`` (the BERT encoder, output ``last_hidden_state``; pooling
and normalisation happen in ``bot.onnx_components``), ``tokenizer.json`` and a README. Prints the cosine
similarity between the ONNX and the sentence-transformers embeddings of sample sentences.

    python -m training.export_embedder models/embedder
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from transformers import AutoModel

from training.train_reader import base_encoder_path

SAMPLES = [
    "Who backs the rebel coalition?",
    "The siege of the city collapsed after a week of heavy fighting in the north and east.",
    "What is the capital of Australia?",
]


class _HiddenStates(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def main(out: Annotated[Path, typer.Argument(help="Target folder.")] = Path("models/embedder")) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = base_encoder_path()
    model = AutoModel.from_pretrained(source, dtype=torch.float32).eval()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "model.onnx"
        ids = torch.ones((2, 16), dtype=torch.long)
        torch.onnx.export(
            _HiddenStates(model),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: {0: "batch", 1: "sequence"}
                for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
            },
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(str(fp32), str(out / "model_int8.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    shutil.copy2(source / "tokenizer.json", out / "tokenizer.json")

    from sentence_transformers import SentenceTransformer

    from bot.onnx_components import _OnnxSentenceEncoder

    reference = SentenceTransformer(str(source), device="cpu").encode(SAMPLES, normalize_embeddings=True)
    ours = _OnnxSentenceEncoder(out / "model_int8.onnx", out / "tokenizer.json", 256, None).encode(SAMPLES)
    cosines = np.sum(reference * ours, axis=1)
    typer.echo(f"exported to {out}; cosine(int8 ONNX, sentence-transformers) per sample: {np.round(cosines, 4)}")


if __name__ == "__main__":
    typer.run(main)
