"""The plain PyTorch reader (``reader.backend: torch``): Haystack's ``TransformersExtractiveReader`` with
our span decoding.

Our reader was trained SQuAD 2.0-style to put its "no answer" mass on [CLS]. Haystack masks [CLS] away
and scores spans by their absolute logits, with no limit on their length; we decode every window with
``bot.span_decoding`` instead — the one decoder the ONNX fast path (``bot.onnx_components``) and training
evaluation use — so a span's score is sigmoid(factor * (span - null) + bias), with factor and bias fitted on
held-out SQuAD (Platt scaling) so that it reads as the probability that the answer is right.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from haystack import component
from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

from bot.span_decoding import DEFAULT_MAX_ANSWER_TOKENS, calibrated, decode_window


@component
class QabotReader(TransformersExtractiveReader):
    """``TransformersExtractiveReader`` decoding spans with ``bot.span_decoding`` (see module doc).

    Parent methods are called explicitly: ``@component`` rebuilds the class, which breaks bare ``super()``.
    """

    def __init__(
        self,
        model: Path | str,
        null_relative_scores: bool = True,
        calibration_bias: float = 0.0,
        max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS,
        **kwargs: Any,
    ) -> None:
        TransformersExtractiveReader.__init__(self, model=model, **kwargs)
        self.null_relative_scores = null_relative_scores
        self.calibration_bias = calibration_bias
        self.max_answer_tokens = max_answer_tokens

    def question_tokens(self, question: str) -> int:
        """How many of the window's tokens ``question`` takes (special tokens not counted)."""
        self.warm_up()
        return len(self.tokenizer(question, add_special_tokens=False)["input_ids"])

    def _postprocess(  # type: ignore[override]
        self,
        *,
        start: torch.Tensor,
        end: torch.Tensor,
        sequence_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        answers_per_seq: int,
        encodings: list,
    ) -> tuple[list[list[int]], list[list[int]], list[torch.Tensor]]:
        """Haystack's contract (per window: char starts, char ends, scores), filled by our decoder."""
        starts, ends, scores = [], [], []
        passage_mask = ((sequence_ids == 1) & (attention_mask == 1)).cpu()
        start_logits, end_logits = start.float().cpu().numpy(), end.float().cpu().numpy()
        for row, encoding in enumerate(encodings):
            decoded = decode_window(
                start_logits[row],
                end_logits[row],
                torch.nonzero(passage_mask[row]).flatten().numpy(),
                encoding.offsets,
                max_answer_tokens=self.max_answer_tokens,
                top_n=answers_per_seq,
                null_relative=self.null_relative_scores,
            )
            starts.append([span.char_start for span in decoded.spans])
            ends.append([span.char_end for span in decoded.spans])
            probabilities = [
                calibrated(span.margin, self.calibration_factor, self.calibration_bias) for span in decoded.spans
            ]
            scores.append(torch.tensor(probabilities, dtype=torch.float32))
        return starts, ends, scores
