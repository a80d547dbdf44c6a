"""bot.answer_types: a span without the shape of answer its question asks for ("How many …?" → "food")."""

from __future__ import annotations

import gzip
import json

import pytest

from bot.answer_types import fits_the_question
from training.squad_data import DEFAULT_SQUAD_PATH


@pytest.mark.parametrize(
    ("question", "answer", "fits"),
    [
        ("How many square kilometers did the opposition recapture?", "35 square kilometers", True),
        ("How many rebel fighters were lost?", "very limited", True),  # a vague quantity is an answer
        ("How many tanks did the regime lose?", "dozens", True),
        ("How much fuel did the government deliver?", "food", False),
        ("How many tanks did the regime lose?", "very quickly", False),
        ("How far is Idlib from Aleppo?", "east", True),  # "how far" is not checked: "to the outskirts" answers it
        ("How long did it take to capture the academy?", "within two hours", True),
        ("How long did it take to capture the academy?", "a month", True),
        ("How long did it take to capture the academy?", "the rebels", False),
        ("In what year did the war begin?", "2011", True),
        ("In what year did the war begin?", "Turkey", False),
        ("By what year of age does the brain reach 90% of its size?", "six years of age", True),
        ("When did the war begin?", "after the protests", True),  # "when" is left alone
        ("How many groups took part?", "the Free Syrian Army", False),  # a name is no quantity
        ("How much aid arrived?", "much-needed food", False),
        ("How many groups took part?", "both", True),
        ("How many cabinet members does it approve?", "twenty-two", True),
        ("How long are the council terms?", "four-year", True),
        ("How many liters of beer are sold?", "Many", True),
        ("How much longer will the siege last?", "weeks", True),  # a duration, not an amount
        ("How long did the siege hold?", "until the rebels broke it", True),
        ("How long did the siege last?", "a months-long siege", True),
        ("How long was the convoy?", "a mile-long convoy", True),
        ("How much time is left?", "hours", True),
        ("How many liters of beer are sold?", "“Many”", True),
        ("Along with geography, what often affects how much electricity an area uses?", "climate", True),
        ("How much did the population increase?", "tripled", True),
        ("Who backs Ahrar al-Sham?", "Turkey, Saudi Arabia, and Qatar", True),
    ],
)
def test_fits_the_question(question: str, answer: str, fits: bool):
    assert fits_the_question(question, answer) is fits


@pytest.mark.skipif(not DEFAULT_SQUAD_PATH.exists(), reason=f"SQuAD data not at {DEFAULT_SQUAD_PATH}")
def test_squad_gold_answers_have_the_shape_their_questions_ask_for():
    """The rule scores a span 0, so it must hold for right answers: SQuAD v1.1 train's gold answers (most that fail
    are noisy golds: "Wembley" for a year). ``pytest -s`` prints the count the docs quote."""
    with gzip.open(DEFAULT_SQUAD_PATH, "rt", encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    asked = [
        (qa["question"], qa["answers"][0]["text"])
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    misses = [(question, gold) for question, gold in asked if not fits_the_question(question, gold)]
    checked = sum(1 for question, _ in asked if not fits_the_question(question, ""))  # questions the rule checks
    print(f"\n{checked - len(misses):,} of {checked:,} gold answers ({100 * (1 - len(misses) / checked):.1f} %) fit")
    assert checked > 9000
    assert len(misses) / checked <= 0.006, misses[:20]
