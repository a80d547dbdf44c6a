"""The one span decoder: a reader window's start/end logits → its best answer spans and its null score.

Used by the ONNX reader (``bot.onnx_components``), the PyTorch reader (``bot.reader``) and the training
evaluation (``training.evaluate_reader``), so that the margin calibration and the no-answer threshold are
fitted on exactly the numbers the bot serves. Before this module the three disagreed: evaluation compared the
best span with the *lowest* null over all windows, the PyTorch reader had no answer-length limit.

The rule (SQuAD 2.0 style, as our reader was trained): a span's score is start logit + end logit minus that
same window's null logit (start + end at [CLS], token 0), spans lie inside the passage tokens and are at most
``max_answer_tokens`` long. Across windows and passages the best span is the one with the highest margin.
Only numpy: the served path must not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class DecodedSpan:
    """One candidate answer in one window: token and character bounds, and its margin over the null."""

    first_token: int
    last_token: int
    char_start: int
    char_end: int
    margin: float  # span logit - this window's null logit (the raw span logit when not null-relative)


@dataclass(frozen=True)
class WindowDecoding:
    spans: list[DecodedSpan]  # best first
    null_logit: float  # start + end logit at [CLS]


def decode_window(
    start: np.ndarray,
    end: np.ndarray,
    passage_tokens: np.ndarray | Sequence[int],
    offsets: Sequence[tuple[int, int] | None],
    max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS,
    top_n: int = 8,
    null_relative: bool = True,
) -> WindowDecoding:
    """The ``top_n`` best spans of one window (best first) and its null logit.

    ``passage_tokens``: indices of the window's passage (context) tokens, in order; ``offsets``: per token
    of the window, its (start, end) characters in the passage.
    """
    start = np.asarray(start, dtype=np.float32)
    end = np.asarray(end, dtype=np.float32)
    null = float(start[0] + end[0])
    passage = np.asarray(passage_tokens, dtype=np.int64)
    if passage.size == 0:
        return WindowDecoding([], null)
    scores = start[passage][:, None] + end[passage][None, :] - (null if null_relative else 0.0)
    positions = np.arange(passage.size)
    length = positions[None, :] - positions[:, None]
    scores = np.where((length >= 0) & (length < max_answer_tokens), scores, -np.inf)
    flat_scores = scores.ravel()
    if top_n < flat_scores.size:  # partial selection: a full sort of the n x n grid cost ~1 ms per window
        candidates = np.argpartition(flat_scores, -top_n)[-top_n:]
    else:
        candidates = np.arange(flat_scores.size)
    spans = []
    for position in candidates[np.argsort(-flat_scores[candidates], kind="stable")]:
        margin = float(flat_scores[position])
        if not math.isfinite(margin):
            break
        first, last = int(passage[position // passage.size]), int(passage[position % passage.size])
        spans.append(DecodedSpan(first, last, offsets[first][0], offsets[last][1], margin))  # type: ignore[index]
    return WindowDecoding(spans, null)


def calibrated(margin: float, factor: float, bias: float) -> float:
    """Platt scaling: the probability that the answer with this margin is right, sigmoid(factor*margin + bias)."""
    z = factor * margin + bias
    if z < -60:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))
