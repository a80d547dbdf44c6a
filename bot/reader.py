"""The plain PyTorch reader (``reader.backend: torch``): Haystack's ``TransformersExtractiveReader`` with
null-relative span scores.

Our reader was trained SQuAD 2.0-style to put its "no answer" mass on [CLS]. Haystack masks [CLS] away
and scores spans by their absolute logits; we subtract each window's null logit first, so a span's score
is sigmoid(factor * (span - null) + bias), with factor and bias fitted on held-out SQuAD (Platt scaling) so
that it reads as the probability that the answer is right. That makes one threshold meaningful across
questions, and it is the same score the ONNX fast path computes
(``bot.onnx_components.OnnxExtractiveReader``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from haystack import component
from haystack_integrations.components.readers.transformers import TransformersExtractiveReader


@component
class QabotReader(TransformersExtractiveReader):
    """``TransformersExtractiveReader`` with null-relative span scores (see module doc).

    Parent methods are called explicitly: ``@component`` rebuilds the class, which breaks bare ``super()``.
    """

    def __init__(
        self,
        model: Path | str,
        null_relative_scores: bool = True,
        calibration_bias: float = 0.0,
        **kwargs: Any,
    ) -> None:
        TransformersExtractiveReader.__init__(self, model=model, **kwargs)
        self.null_relative_scores = null_relative_scores
        self.calibration_bias = calibration_bias

    def question_tokens(self, question: str) -> int:
        """How many of the window's tokens ``question`` takes (special tokens not counted)."""
        self.warm_up()
        return len(self.tokenizer(question, add_special_tokens=False)["input_ids"])

    def _postprocess(self, *, start: torch.Tensor, end: torch.Tensor, **kwargs: Any):  # type: ignore[override]
        if self.null_relative_scores:
            start = start - start[:, :1]
            end = end - end[:, :1]
        # Haystack computes sigmoid(factor * (start + end)); shifting both logits by bias / (2 * factor)
        # adds the Platt bias without touching its code.
        shift = self.calibration_bias / (2 * self.calibration_factor)
        start, end = start + shift, end + shift
        return TransformersExtractiveReader._postprocess(self, start=start, end=end, **kwargs)
