"""The answer verifier (bot.verifier): its word features, its file, and the config switch in QAService."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from haystack import Document, ExtractedAnswer

from bot.answering import QAService
from bot.config import with_overrides
from bot.errors import ModelLoadError
from bot.models import reader_verifier
from bot.verifier import FEATURES, AnswerVerifier, content_stems, span_features, stem

PASSAGE = (
    "But the Free Syrian Army — aided by a military alliance of several rebel brigades known as Jaysh al Fateh, "
    "or the Army of Conquest — successfully regained control over a significant portion of Aleppo."
)


def _features(question: str, answer: str = "Jaysh al Fateh") -> dict[str, float]:
    values = span_features(question, answer, 0.9, PASSAGE, PASSAGE, [0.2])
    return dict(zip(FEATURES, values, strict=True))


def test_stems_meet_across_word_forms_and_skip_question_words():
    assert stem("leads") == stem("leader") == stem("lead")
    assert stem("recaptured") == stem("recapture")
    assert content_stems("Who leads the Free Syrian Army?") == {stem("leads"), "free", "syrian", "army"}


def test_features_see_a_missing_question_word():
    """Same span, same reader score: the question whose key word the passage lacks looks worse on every
    overlap feature (the issue's "Who leads the Free Syrian Army?" → "Jaysh al Fateh")."""
    asked, answered = _features("Who leads the Free Syrian Army?"), _features("Who aided the Free Syrian Army?")
    assert answered["sentence_coverage"] == 1.0 and answered["missing_in_passage"] == 0
    assert asked["sentence_coverage"] == 0.75 and asked["missing_in_passage"] == 1
    assert _features("Who aided the Free Syrian Army in 2012?")["rare_missing"] == 1
    assert _features("Who aided the Free Syrian Army?", answer="Free Syrian Army")["answer_in_question"] == 1.0
    assert _features("Who aided the Free Syrian Army in Brasília?")["missing_in_passage"] == 1
    assert stem("Brasília") == stem("Brasilia")


def test_verifier_file_must_match_the_features(tmp_path: Path):
    path = tmp_path / "verifier.json"
    path.write_text(json.dumps({"features": ["reader_logit"], "weights": [1.0], "bias": 0.0, "threshold": 0.05}))
    with pytest.raises(ModelLoadError, match=r"reader\.verifier: .*fitted for features"):
        AnswerVerifier.from_file(path)  # serving: a stale file that lacks later features is refused


def test_a_verifier_fitted_before_later_features_scores_as_it_did(tmp_path: Path):
    """``fit_verifier --baseline``: an older verifier.json (fewer features, a prefix of ours) weighs the later ones
    0; serving refuses it."""
    older = tmp_path / "older.json"
    older.write_text(json.dumps({"features": list(FEATURES[:-1]), "weights": [0.5] * (len(FEATURES) - 1),
                                 "bias": -1.0, "threshold": 0.05}))  # fmt: skip
    verifier = AnswerVerifier.from_file(older, older=True)
    assert verifier.weights.tolist() == [0.5] * (len(FEATURES) - 1) + [0.0]
    with pytest.raises(ModelLoadError, match="fitted for features"):
        AnswerVerifier.from_file(older)  # not for serving
    reordered = tmp_path / "reordered.json"
    reordered.write_text(json.dumps({"features": list(FEATURES[1::-1]), "weights": [1.0, 1.0], "bias": 0.0,
                                     "threshold": 0.05}))  # fmt: skip
    with pytest.raises(ModelLoadError, match="fitted for features"):
        AnswerVerifier.from_file(reordered, older=True)


def test_config_switch(service_settings, tmp_path: Path):
    """reader.verifier null serves the reader's own score; a missing file is a clear load error."""
    assert reader_verifier(service_settings) is not None
    plain = with_overrides(service_settings, {"reader.verifier": None})
    assert reader_verifier(plain) is None
    missing = with_overrides(service_settings, {"reader.verifier": str(tmp_path / "none.json")})
    with pytest.raises(ModelLoadError, match="does not exist"):
        reader_verifier(missing)
    question = "Who backs Ahrar al-Sham?"
    service = QAService.from_settings(plain)  # loaded once: both calls read the same index and models
    reader_only = service.answer_with_passages(question, no_answer_threshold=0.0)[0]
    spans, _ = service.candidates(question)
    assert reader_only.score == pytest.approx(spans[0].score)


def test_features_see_an_answer_sentence_that_says_the_opposite():
    """ "Which group captured the supply line from the north?" over a sentence about the line from the south:
    every other word is covered, so only this feature tells the two apart."""
    sentence = "The rebels captured a government supply line leading into the city from the south."

    def opposite(question: str) -> float:
        values = dict(zip(FEATURES, span_features(question, "The rebels", 0.9, sentence, sentence, []), strict=True))
        return values["says_the_opposite"]

    assert opposite("Which group captured the supply line leading into the city from the north?") == 1.0
    assert opposite("Which group captured the supply line leading into the city from the south?") == 0.0


def test_served_answer_is_refused_when_its_sentence_says_the_opposite(qa_service: QAService):
    """Through the whole service on the article: the supply line the rebels took leads in from the south. Asked
    about the north (one of tests/data/aleppo_unanswerable.json), the reader finds the same confident span with
    every other word covered; the verifier refuses it (the previous verifier, without the feature, answered)."""
    south = qa_service.answer("Which group captured the supply line leading into the city from the south?")
    north = qa_service.answer("Which group captured the supply line leading into the city from the north?")
    assert south.answered and "Free Syrian Army" in (south.text or "")
    assert not north.answered, north


def test_served_answer_without_the_shape_asked_for_is_refused(qa_service: QAService):
    """ "How much fuel …?" over an article that says food and fuel were delivered, never how much: the reader's
    best span is "food" (the previous verifier answered it); a quantity question gets a quantity or nothing."""
    fuel = qa_service.answer("How much fuel did the government deliver?")
    assert not fuel.answered, fuel
    territory = qa_service.answer("How much territory does Alabdallah estimate the opposition recaptured?")
    assert territory.answered and "35" in (territory.text or "")


def _spans_over(text: str, scored: list[tuple[str, float]]) -> list[ExtractedAnswer]:
    """Reader spans over one chunk of text, with the reader scores given (best first)."""
    document = Document(content=text, meta={"article_id": "a", "title": "T", "start": 0, "sentence_starts": [0],
                                            "sentence_ends": [len(text)]})  # fmt: skip
    spans = []
    for data, score in scored:
        start = text.index(data)
        offset = ExtractedAnswer.Span(start, start + len(data))
        spans.append(ExtractedAnswer(query="q", score=score, data=data, document=document, document_offset=offset))
    return spans


def test_alternatives_are_not_cut_short_by_a_span_the_verifier_rejects(qa_service: QAService):
    """Spans come in the reader's order; one the verifier scores 0 in the middle does not hide those after it."""
    text = "The opposition recaptured 35 square kilometers, and food reached 40,000 people in the east."
    spans = _spans_over(text, [("35 square kilometers", 0.95), ("food", 0.9), ("40,000 people", 0.85)])
    answer = qa_service._to_answer("How many square kilometers did the opposition recapture?", spans)
    assert answer.text == "35 square kilometers"
    assert [alternative.text for alternative in answer.alternatives] == ["40,000 people"]
