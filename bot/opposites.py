"""Words of a question that have an opposite ("largest"/"smallest", "northern"/"southern", "first"/"last").

One rule for two callers. ``training.hard_negatives`` swaps such a word for its opposite to make an
unanswerable question (one of SQuAD 2.0's most common kinds); the answer verifier (``bot.verifier``) checks whether the
answer's sentence says the opposite of what was asked ("Which group captured the supply line from the
*north*?" answered from a sentence about the supply line from the *south*). Word overlap alone cannot see
that: every other word of the question is in the sentence.

Only pairs where a text that holds one word and not the other does not answer a question about the other: no
comparatives or win/lose ("Who lost?" is answered by "X defeated Y"). A capitalised word after the first is
part of a name ("West Virginia", "Middle East"), "most/least/first/last" count only after "the" ("the most
popular", "the first king"; not "most people", "at least", "last week" or "how long did it last?"), and an
alternative question ("Is it more or less ...?") asks for both sides. The question and the sentence are read by
the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_PAIRS = (
    ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"), ("longest", "shortest"),
    ("oldest", "newest"), ("earliest", "latest"), ("maximum", "minimum"),
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
# Words that have an opposite only after "the": "the most popular", "the first king"; not "most people", "at
# least", "last week", "How long did it last?".
_AFTER_THE = {"most": "least", "least": "most", "first": "last", "last": "first"}
_THE_WORD = re.compile(r"\b[Tt]he\s+(most|least|first|last)\b")
# Forms of one word: a question about the north is answered by a sentence about "northern Syria".
_FAMILY = {
    "northern": "north", "northernmost": "north", "southern": "south", "southernmost": "south",
    "eastern": "east", "easternmost": "east", "western": "west", "westernmost": "west",
    "increased": "increase", "decreased": "decrease", "imported": "imports", "exported": "exports",
}  # fmt: skip
_ALTERNATIVE = re.compile(r"\bor\b", re.IGNORECASE)
WORD = re.compile(r"[A-Za-z]+")


def family(word: str) -> str:
    """The word's family, lower case: "northern" and "northernmost" are "north"."""
    word = word.casefold()
    return _FAMILY.get(word, word)


def _terms(text: str, first_word_counts: bool = True) -> Iterator[tuple[re.Match[str], str]]:
    """(a word's match in ``text``, its opposite in lower case) for the words that count: a pair word that is
    not part of a name (capitalised, except a question's first word), then "the most/least/first/last"."""
    for position, match in enumerate(WORD.finditer(text)):
        word = match.group()
        if word[0].isupper() and (position or not first_word_counts):
            continue
        opposite = OPPOSITES.get(word.casefold())
        if opposite is not None:
            yield match, opposite
    for match in _THE_WORD.finditer(text):
        word = WORD.match(text, match.start(1))  # the word alone, at its place in the text
        if word is not None:
            yield word, _AFTER_THE[word.group()]


def asked_opposites(question: str) -> Iterator[tuple[re.Match[str], str]]:
    """(the word's match in ``question``, its opposite in lower case), in the question's order, then those after
    "the"; nothing for an alternative question."""
    if not _ALTERNATIVE.search(question):
        yield from _terms(question)


def families_of(text: str) -> set[str]:
    """The families of the text's words ("northern" counts as "north")."""
    return {family(word) for word in WORD.findall(text)}


def says_the_opposite(question: str, sentence: str) -> bool:
    """Does ``sentence`` hold the opposite of a word the question asks about (by the same rules; a sentence's
    capitalised first word is taken for a name: "North Korea"), and no form of that word itself?"""
    in_sentence = {family(match.group()) for match, _ in _terms(sentence, first_word_counts=False)}
    if not in_sentence:
        return False
    every_family = families_of(sentence)
    return any(
        family(opposite) in in_sentence and family(match.group()) not in every_family
        for match, opposite in asked_opposites(question)
    )
