"""SQuAD feature building with a fast tokenizer: question + context windows labelled with answer tokens.

Only the context is truncated; long contexts become several overlapping windows (``doc_stride``). A window
that does not contain the whole answer, and every window of a negative, is labelled at [CLS] (index 0), which
is where the reader learns its null score.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerFast

from training.squad_data import QAExample


@dataclass(frozen=True)
class WindowSettings:
    max_seq_length: int = 256
    doc_stride: int = 128
    max_question_tokens: int = 64


@dataclass
class Feature:
    """One tokenised window; ``offsets`` maps token -> context char span (None outside the context)."""

    example_index: int
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int] | None]
    start_position: int
    end_position: int


def build_features(
    examples: list[QAExample],
    tokenizer: PreTrainedTokenizerFast,
    settings: WindowSettings,
    batch_size: int = 1000,
) -> list[Feature]:
    """Tokenise every example into windows and label the answer's start/end token in each window."""
    features: list[Feature] = []
    for batch_start in range(0, len(examples), batch_size):
        batch = examples[batch_start : batch_start + batch_size]
        questions = [_clip_question(ex.question, tokenizer, settings.max_question_tokens) for ex in batch]
        encoded = tokenizer(
            questions,
            [ex.context for ex in batch],
            truncation="only_second",
            max_length=settings.max_seq_length,
            stride=settings.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        for window, local_index in enumerate(encoded["overflow_to_sample_mapping"]):
            example = batch[local_index]
            sequence_ids = encoded.sequence_ids(window)
            offsets = [
                tuple(span) if sequence_ids[i] == 1 else None
                for i, span in enumerate(encoded["offset_mapping"][window])
            ]
            start, end = _label_window(example, offsets)
            features.append(
                Feature(
                    example_index=batch_start + local_index,
                    input_ids=encoded["input_ids"][window],
                    token_type_ids=encoded["token_type_ids"][window],
                    offsets=offsets,
                    start_position=start,
                    end_position=end,
                )
            )
    return features


def _clip_question(question: str, tokenizer: PreTrainedTokenizerFast, max_tokens: int) -> str:
    """Very long questions would crowd out the context; keep their first ``max_tokens`` tokens."""
    encoding = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(encoding["input_ids"]) <= max_tokens:
        return question
    return question[: encoding["offset_mapping"][max_tokens - 1][1]]


def _label_window(example: QAExample, offsets: list[tuple[int, int] | None]) -> tuple[int, int]:
    if example.is_negative or example.answer_start is None:
        return 0, 0
    answer_start = example.answer_start
    answer_end = answer_start + len(example.answers[0])
    context_tokens = [i for i, span in enumerate(offsets) if span is not None]
    if not context_tokens:
        return 0, 0
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > answer_start or offsets[last][1] < answer_end:
        return 0, 0
    start = first
    while start <= last and offsets[start][1] <= answer_start:
        start += 1
    end = last
    while end >= first and offsets[end][0] >= answer_end:
        end -= 1
    if start > end:
        return 0, 0
    return start, end
