"""qabot's extractive reader: Haystack's ``TransformersExtractiveReader`` with two additions.

1. ``backend="onnx"`` runs the model with ONNX Runtime (dynamic int8 export in ``models/reader/onnx``)
   instead of PyTorch; tokenisation, windowing, span scoring and de-duplication stay Haystack's own.
2. ``null_relative_scores``: our reader was trained SQuAD 2.0-style to put its "no answer" mass on [CLS].
   Haystack masks [CLS] away and scores spans by their absolute logits; we subtract each window's null
   logit first, so a span's score is sigmoid(factor * (span - null)) and 0.5 means "as likely as no
   answer". That makes one threshold meaningful across questions.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from haystack import component
from haystack.utils import ComponentDevice
from haystack_integrations.components.readers.transformers import TransformersExtractiveReader
from transformers import AutoTokenizer


class OnnxQuestionAnsweringModel:
    """Callable with the slice of the transformers QA model interface that Haystack's reader uses."""

    def __init__(self, onnx_path: Path, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._input_names = {node.name for node in self.session.get_inputs()}

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        feeds = {"input_ids": input_ids.numpy().astype(np.int64), "attention_mask": attention_mask.numpy()}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        start, end = self.session.run(["start_logits", "end_logits"], feeds)
        return SimpleNamespace(start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end))


@component
class QabotReader(TransformersExtractiveReader):
    """Extractive reader with an ONNX Runtime backend and null-relative span scores (see module doc).

    Parent methods are called explicitly: ``@component`` rebuilds the class, which breaks bare ``super()``.
    """

    def __init__(
        self,
        model: Path | str,
        backend: str = "torch",
        onnx_path: Path | None = None,
        null_relative_scores: bool = True,
        onnx_threads: int | None = None,
        **kwargs: Any,
    ) -> None:
        TransformersExtractiveReader.__init__(self, model=model, **kwargs)
        self.backend = backend
        self.onnx_path = onnx_path
        self.null_relative_scores = null_relative_scores
        self.onnx_threads = onnx_threads

    def warm_up(self) -> None:
        if self.model is not None:
            return
        if self.backend != "onnx":
            TransformersExtractiveReader.warm_up(self)
            return
        if self.onnx_path is None:
            raise ValueError("backend 'onnx' needs onnx_path")
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name_or_path)
        self.model = OnnxQuestionAnsweringModel(self.onnx_path, self.onnx_threads)
        self.device = ComponentDevice.from_str("cpu")

    def _postprocess(self, *, start: torch.Tensor, end: torch.Tensor, **kwargs: Any):  # type: ignore[override]
        if self.null_relative_scores:
            start = start - start[:, :1]
            end = end - end[:, :1]
        return TransformersExtractiveReader._postprocess(self, start=start, end=end, **kwargs)
