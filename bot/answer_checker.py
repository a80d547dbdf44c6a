"""The answer checker: a small cross-encoder's second opinion on the reader's span (issue 7).

It reads the question against the answer and the sentence it comes from, and gives a logit for "this span
answers this question"; the verifier (``bot.verifier``) weighs it with its other features. Trained by
``training/answer_checker.py`` on the reader's own right and wrong spans over SQuAD training articles.

One text format for training and serving (``checker_pair``), one runtime (int8 ONNX, like the reader).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.onnx_components import load_tokenizer, onnx_session

MAX_TOKENS = 128  # question + answer + sentence; a longer sentence is cut at the end


def checker_pair(question: str, answer: str, sentence: str) -> tuple[str, str]:
    """(first, second) text of the checker's input: the question, then the answer and its sentence."""
    return question, f"{answer} [SEP] {sentence}"


class AnswerChecker:
    """Logits of the checker for (question, answer, sentence) triples, in one batched ONNX call."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        self.folder, self.threads = folder, threads
        self._session = None

    def warm_up(self) -> None:
        if self._session is not None:
            return
        tokenizer = load_tokenizer(self.folder / "tokenizer.json")
        tokenizer.enable_truncation(MAX_TOKENS, strategy="only_second")
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
        self._tokenizer = tokenizer
        self._session = onnx_session(self.folder / "model_int8.onnx", self.threads)

    def logits(self, triples: list[tuple[str, str, str]]) -> np.ndarray:
        if not triples:
            return np.zeros(0)
        self.warm_up()
        encodings = self._tokenizer.encode_batch([checker_pair(*triple) for triple in triples])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (logits,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})  # type: ignore[union-attr]
        return logits[:, 0].astype(np.float64)
