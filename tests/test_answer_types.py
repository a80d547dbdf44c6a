"""bot.answer_types: a span without the shape of answer its question asks for ("How many …?" → "food")."""

from __future__ import annotations

import pytest

from bot.answer_types import fits_the_question


@pytest.mark.parametrize(
    ("question", "answer", "fits"),
    [
        ("How many square kilometers did the opposition recapture?", "35 square kilometers", True),
        ("How many rebel fighters were lost?", "very limited", True),  # a vague quantity is an answer
        ("How many tanks did the regime lose?", "dozens", True),
        ("How much fuel did the government deliver?", "food", False),
        ("How many tanks did the regime lose?", "very quickly", False),
        ("How far is Idlib from Aleppo?", "east", False),
        ("How far is Idlib from Aleppo?", "about 60 km", True),
        ("How far is Idlib from Aleppo?", "near the border", True),
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
        ("How much further is Idlib?", "near the border", True),
        ("Who backs Ahrar al-Sham?", "Turkey, Saudi Arabia, and Qatar", True),
    ],
)
def test_fits_the_question(question: str, answer: str, fits: bool):
    assert fits_the_question(question, answer) is fits
