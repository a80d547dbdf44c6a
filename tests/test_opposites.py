"""bot.opposites: which words of a question have an opposite, and when a sentence says the opposite."""

from __future__ import annotations

import pytest

from bot.opposites import asked_opposites, says_the_opposite


def _asked(question: str) -> list[tuple[str, str]]:
    return [(match.group(), opposite) for match, opposite in asked_opposites(question)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is the largest city of Normandy?", [("largest", "smallest")]),
        ("Largest city of Normandy?", [("Largest", "smallest")]),  # the first word may be capitalised
        ("Who ruled West Francia?", []),  # a name, not a direction
        ("Is Rouen the largest or the smallest city?", []),  # asks for both sides
        ("What is the most popular drink?", [("most", "least")]),
        ("What do most farms grow?", []),  # "least farms" is no question
        ("Who was the first king of Normandy?", [("first", "last")]),
        ("What did the rebels capture last week?", []),  # "last" as a time word
        ("How long did the fighting last?", []),  # "last" as a verb
        ("What does the First Amendment protect?", []),  # a name
        ("Which road leads into the city from the north?", [("north", "south")]),
    ],
)
def test_asked_opposites(question: str, expected: list[tuple[str, str]]):
    assert _asked(question) == expected


def test_positions_point_at_the_word():
    question = "What is the least common reason?"
    [(match, opposite)] = list(asked_opposites(question))
    assert question[match.start() : match.end()] == "least" and opposite == "most"


def test_says_the_opposite_only_when_the_asked_word_is_missing():
    south = "It regained a government supply line leading into the city from the south."
    assert says_the_opposite("Which supply line leads into the city from the north?", south)
    assert not says_the_opposite("Which supply line leads into the city from the south?", south)
    both = "Supply lines lead into the city from the south and from the north."
    assert not says_the_opposite("Which supply line leads into the city from the north?", both)
    assert not says_the_opposite("Who regained the supply line?", south)


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("How many fighters were in the first wave?", "At least 300 fighters took part."),  # "at least"
        ("What lies west of the city?", "Fighters from the Middle East arrived."),  # a name in the sentence
        ("Who was the last king?", "He was first crowned in 911 and ruled for decades."),  # "first" not "the first"
        ("What is the largest city?", "Rouen, the largest city, is larger than the smallest town."),  # both words
        ("What happened in the north?", "In northern Syria, rebels attacked from the south."),  # "northern"
        ("Which areas of the east did rebels hold?", "Rebels held eastern districts; the regime held the west."),
        ("Which missiles came from the south?", "North Korea fired missiles."),  # a name opens the sentence
    ],
)
def test_says_the_opposite_reads_the_sentence_by_the_same_rules(question: str, sentence: str):
    assert not says_the_opposite(question, sentence)
