"""Reader training code on real SQuAD data: split, negatives, labels, batching, and exact resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from training.features import WindowSettings, build_features
from training.squad_data import DEFAULT_SQUAD_PATH, load_articles, make_negatives, split_by_article
from training.train_reader import base_encoder_path, length_grouped_batches

pytestmark = pytest.mark.skipif(not DEFAULT_SQUAD_PATH.exists(), reason=f"SQuAD data not at {DEFAULT_SQUAD_PATH}")
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def split():
    return split_by_article(load_articles())


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(base_encoder_path())


def test_validation_split_is_by_whole_article(split):
    train_titles = {ex.title for ex in split.train}
    assert len(split.validation_titles) >= 40 and len(split.validation) >= 4000
    assert not train_titles & set(split.validation_titles)
    assert len(split.train) + len(split.validation) == 87599


def test_negatives_pair_questions_with_other_articles(split):
    negatives = make_negatives(split.train[:5000], 500, seed=1)
    by_question = {ex.qid: ex for ex in split.train[:5000]}
    assert len(negatives) == 500
    for negative in negatives:
        source = by_question[negative.qid.removesuffix("__neg")]
        assert negative.is_negative and negative.title != source.title and negative.context != source.context


def test_labels_point_at_the_answer_text(split, tokenizer):
    examples = split.train[:400]
    features = build_features(examples, tokenizer, WindowSettings(max_seq_length=128, doc_stride=64))
    labelled = exact = 0
    for feature in features:
        example = examples[feature.example_index]
        if feature.start_position == 0:
            continue
        labelled += 1
        start = feature.offsets[feature.start_position][0]
        end = feature.offsets[feature.end_position][1]
        span, answer = example.context[start:end].lower(), example.answers[0].lower().strip()
        assert answer in span  # the labelled tokens cover the answer ...
        exact += span.strip() == answer  # ... and almost always exactly (else the answer ends mid-token: "2" in "20")
    assert labelled >= 380  # every answer is inside at least one window
    assert exact >= 0.97 * labelled
    assert max(len(f.input_ids) for f in features) <= 128


def test_length_grouped_batches_cover_every_window_once(split, tokenizer):
    features = build_features(split.train[:300], tokenizer, WindowSettings())
    batches = length_grouped_batches(features, batch_size=16, seed=3, group=4)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(features)))
    assert batches == length_grouped_batches(features, batch_size=16, seed=3, group=4)


def _train(out: Path, *extra: str) -> None:
    command = [
        sys.executable,
        "-m",
        "training.train_reader",
        "--out",
        str(out),
        "--train-questions",
        "40",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "3",
        "--threads",
        "1",
        *extra,
    ]
    subprocess.run(command, cwd=PROJECT, check=True, capture_output=True, timeout=600)


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path):
    """Two epochs, stopped inside the first: the resumed run ends with the very same weights."""
    _train(tmp_path / "straight", "--epochs", "2")
    _train(tmp_path / "interrupted", "--epochs", "2", "--stop-after", "4")
    _train(tmp_path / "interrupted", "--epochs", "2", "--resume")
    straight = load_file(tmp_path / "straight" / "checkpoint" / "model.safetensors")
    resumed = load_file(tmp_path / "interrupted" / "checkpoint" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=1e-6, msg=name)
    state = torch.load(tmp_path / "interrupted" / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert (
        state["step"]
        == torch.load(tmp_path / "straight" / "checkpoint" / "trainer_state.pt", weights_only=False)["step"]
    )
    run_config = json.loads((tmp_path / "straight" / "run_config.json").read_text())
    assert run_config["epochs"] == 2 and state["step"] == run_config["total_steps"]


def _logits(start: list[list[float]], end: list[list[float]]):
    from types import SimpleNamespace

    return SimpleNamespace(start_logits=torch.tensor(start), end_logits=torch.tensor(end))


def test_distillation_loss_measures_drift_on_answerable_real_tokens_only():
    """Zero when the student matches the teacher; grows with drift; blind to padding and to negative rows."""
    from training.train_reader import distillation_loss

    teacher = _logits([[2.0, 0.0, 1.0, 0.0], [0.0, 3.0, 0.0, 0.0]], [[0.0, 2.0, 1.0, 0.0], [1.0, 0.0, 2.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    both, first = torch.tensor([True, True]), torch.tensor([True, False])
    assert distillation_loss(teacher, teacher, mask, both, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    padded_differently = _logits([[2.0, 0.0, 1.0, 9.0], [0.0, 3.0, 0.0, 0.0]], teacher.end_logits.tolist())
    assert distillation_loss(padded_differently, teacher, mask, both, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    negative_row_drifts = _logits([[2.0, 0.0, 1.0, 0.0], [5.0, 0.0, 0.0, 0.0]], teacher.end_logits.tolist())
    assert distillation_loss(negative_row_drifts, teacher, mask, first, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(negative_row_drifts, teacher, mask, both, 2.0).item() > 0.1


def test_draw_positives_over_draws_questions_answered_away_from_their_words(split):
    """Half the draw answered in a sentence holding at most a third of the question's words (about a sixth of
    SQuAD's), all distinct and answerable; share 0 is the plain seeded sample of earlier runs."""
    import random

    from training.positives import LOW_COVERAGE, answer_sentence_coverage, draw_positives

    pool = split.train[:6000]
    drawn = draw_positives(pool, 400, 0.5, random.Random(3))
    assert len({ex.qid for ex in drawn}) == 400 and all(ex.answers for ex in drawn)
    assert sum(answer_sentence_coverage(ex) <= LOW_COVERAGE for ex in drawn) == 200
    assert draw_positives(pool, 50, 0.0, random.Random(3)) == random.Random(3).sample(pool, 50)


def test_freeze_lower_layers_fixes_embeddings_and_the_lowest_layers_only():
    from transformers import AutoModelForQuestionAnswering

    from training.train_reader import freeze_lower_layers

    model = AutoModelForQuestionAnswering.from_pretrained(PROJECT / "models" / "reader")
    freeze_lower_layers(model, 4)
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    assert any(name.startswith("bert.embeddings.") for name in frozen)
    assert {name.split(".")[3] for name in frozen if ".encoder.layer." in name} == {"0", "1", "2", "3"}
    top = ("qa_outputs", "bert.encoder.layer.5")
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith(top))
