"""One span decoder (bot.span_decoding): the ONNX reader, the PyTorch reader and training evaluation pick the
same best span with the same margin from the same real model logits (the article, read by our int8 reader)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from haystack import Document
from transformers import AutoTokenizer

from bot.config import PROJECT_ROOT
from bot.onnx_components import OnnxExtractiveReader
from bot.reader import QabotReader
from bot.span_decoding import calibrated, decode_window
from tests.conftest import SEED_ARTICLE
from training.evaluate_reader import predict
from training.features import WindowSettings, build_features
from training.squad_data import QAExample

READER_DIR = PROJECT_ROOT / "models" / "reader"
FACTOR, BIAS = 0.15, -1.8
QUESTIONS = [
    "Who dominated the pro-regime forces?",
    "How much territory does Alabdallah estimate the opposition recaptured?",
    "Who backs Ahrar al-Sham?",
    "What is the capital of Australia?",
]


@pytest.fixture(scope="module")
def onnx_reader() -> OnnxExtractiveReader:
    reader = OnnxExtractiveReader(
        READER_DIR, READER_DIR / "onnx" / "model_int8.onnx", calibration_factor=FACTOR, calibration_bias=BIAS
    )
    reader.warm_up()
    return reader


@pytest.fixture(scope="module")
def article() -> str:
    return SEED_ARTICLE.read_text(encoding="utf-8").split("---", 2)[2].split("NOW WATCH")[0].strip()


def _windows_and_logits(reader: OnnxExtractiveReader, question: str, context: str):
    encoding = reader._tokenizer.encode(question, context)  # type: ignore[union-attr]
    windows = [encoding, *encoding.overflowing]
    starts, ends = reader._logits(windows, [0] * len(windows))
    return windows, starts, ends


@pytest.mark.parametrize("question", QUESTIONS)
def test_three_readers_decode_alike(onnx_reader: OnnxExtractiveReader, article: str, question: str):
    windows, starts, ends = _windows_and_logits(onnx_reader, question, article)
    assert len(windows) > 1, "the whole article must span several windows, each with its own null"
    document = Document(content=article)

    served = [a for w, s, e in zip(windows, starts, ends, strict=True)
              for a in onnx_reader._window_answers(question, document, w, s, e)]
    served.sort(key=lambda a: a.score, reverse=True)
    best_margin = served[0].meta["margin"]

    torch_reader = QabotReader(model=str(READER_DIR), calibration_factor=FACTOR, calibration_bias=BIAS)
    width = max(len(w.ids) for w in windows)
    padded = [np.pad(x, (0, width - len(x)), constant_values=-1e4) for x in starts], [
        np.pad(x, (0, width - len(x)), constant_values=-1e4) for x in ends
    ]
    sequence_ids = torch.tensor([[-1 if s is None else s for s in w.sequence_ids] + [-1] * (width - len(w.ids))
                                 for w in windows])
    mask = torch.tensor([[1] * len(w.ids) + [0] * (width - len(w.ids)) for w in windows])
    char_starts, char_ends, probabilities = torch_reader._postprocess(
        start=torch.tensor(np.stack(padded[0])), end=torch.tensor(np.stack(padded[1])), sequence_ids=sequence_ids,
        attention_mask=mask, answers_per_seq=8, encodings=windows,
    )
    torch_best = max(
        ((float(p), s, e) for row in zip(char_starts, char_ends, probabilities, strict=True)
         for s, e, p in zip(*row, strict=True)),
    )
    assert torch_best[0] == pytest.approx(served[0].score, abs=1e-6)
    assert article[torch_best[1] : torch_best[2]] == served[0].data

    tokenizer = AutoTokenizer.from_pretrained(READER_DIR)
    example = QAExample("q", "Aleppo", question, article, (), None)
    settings = WindowSettings(max_seq_length=onnx_reader.max_seq_length, doc_stride=onnx_reader.stride)
    features = build_features([example], tokenizer, settings)
    assert [f.input_ids for f in features] == [list(w.ids) for w in windows]
    (prediction,) = predict([example], features, list(zip(starts, ends, strict=True)))
    assert prediction.text == served[0].data
    assert prediction.margin == pytest.approx(best_margin, abs=1e-4)
    assert calibrated(prediction.margin, FACTOR, BIAS) == pytest.approx(served[0].score, abs=1e-6)


def test_decoder_rules_on_a_small_window():
    """Passage tokens only, length limit, margin against the window's own null, best first."""
    start = np.array([1.0, 9.0, 0.0, 3.0, 0.5, 2.0], dtype=np.float32)  # token 1 is question: never a span
    end = np.array([1.0, 9.0, 0.0, 0.5, 4.0, 1.0], dtype=np.float32)
    offsets = [(0, 0), (0, 0), (0, 0), (0, 5), (6, 9), (10, 12)]
    decoded = decode_window(start, end, [3, 4, 5], offsets, max_answer_tokens=2, top_n=3)
    assert decoded.null_logit == 2.0
    assert [(s.first_token, s.last_token) for s in decoded.spans] == [(3, 4), (4, 4), (3, 3)]
    assert decoded.spans[0].margin == pytest.approx(3.0 + 4.0 - 2.0)
    assert (decoded.spans[0].char_start, decoded.spans[0].char_end) == (0, 9)
    assert all(s.last_token - s.first_token < 2 for s in decode_window(start, end, [3, 4, 5], offsets, 2, 9).spans)
