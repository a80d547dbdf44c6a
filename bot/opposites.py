"""Words of a question that have an opposite ("largest"/"smallest", "northern"/"southern", "first"/"last").

One rule for two callers. ``training.hard_negatives`` swaps such a word for its opposite to make an
unanswerable question (SQuAD 2.0's most common kind); the answer verifier (``bot.verifier``) checks whether the
answer's sentence says the opposite of what was asked ("Which group captured the supply line from the
*north*?" answered from a sentence about the supply line from the *south*). Word overlap alone cannot see
that: every other word of the question is in the sentence.

Only pairs where a text that holds one word and not the other does not answer a question about the other: no
comparatives or win/lose ("Who lost?" is answered by "X defeated Y"). A capitalised word after the first is
part of a name ("West Virginia", "Major League"), "most"/"least" count only after "the" ("the most popular";
"most people" has no opposite), and an alternative question ("Is it more or less ...?") asks for both sides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_PAIRS = (
    ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"), ("longest", "shortest"),
    ("oldest", "newest"), ("earliest", "latest"), ("first", "last"), ("maximum", "minimum"),
    ("north", "south"), ("east", "west"), ("northern", "southern"), ("eastern", "western"),
    ("northernmost", "southernmost"), ("easternmost", "westernmost"), ("upper", "lower"), ("inner", "outer"),
    ("internal", "external"), ("major", "minor"), ("public", "private"), ("male", "female"), ("best", "worst"),
    ("strongest", "weakest"), ("richest", "poorest"), ("fastest", "slowest"), ("heaviest", "lightest"),
    ("deepest", "shallowest"), ("widest", "narrowest"), ("warmest", "coldest"), ("wettest", "driest"),
    ("increase", "decrease"), ("increased", "decreased"), ("imports", "exports"), ("imported", "exported"),
    ("domestic", "foreign"), ("ancient", "modern"), ("positive", "negative"),
)  # fmt: skip
OPPOSITES: dict[str, str] = {}
for _one, _other in _PAIRS:
    OPPOSITES.setdefault(_one, _other)
    OPPOSITES.setdefault(_other, _one)
_MOST_LEAST = {"most": "least", "least": "most"}
_THE_MOST = re.compile(r"\bthe (most|least)\b", re.IGNORECASE)
_ALTERNATIVE = re.compile(r"\bor\b", re.IGNORECASE)
WORD = re.compile(r"[A-Za-z]+")


def asked_opposites(question: str) -> Iterator[tuple[re.Match[str], str]]:
    """(the word's match in ``question``, its opposite in lower case), in the question's order, then "the
    most"/"the least"; nothing for an alternative question."""
    if _ALTERNATIVE.search(question):
        return
    for position, match in enumerate(WORD.finditer(question)):
        word = match.group()
        if position and word[0].isupper():
            continue
        opposite = OPPOSITES.get(word.casefold())
        if opposite is not None:
            yield match, opposite
    for match in _THE_MOST.finditer(question):
        word = WORD.match(question, match.start(1))  # "most"/"least" alone, at its place in the question
        if word is not None:
            yield word, _MOST_LEAST[word.group().casefold()]


def words_of(text: str) -> set[str]:
    """The text's words, case-folded (the unit both callers compare)."""
    return {word.casefold() for word in WORD.findall(text)}


def says_the_opposite(question: str, sentence: str) -> bool:
    """Does ``sentence`` hold the opposite of a word the question asks about, and not that word itself?"""
    in_sentence = words_of(sentence)
    return any(
        opposite in in_sentence and match.group().casefold() not in in_sentence
        for match, opposite in asked_opposites(question)
    )
