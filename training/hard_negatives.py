"""Hard unanswerable examples from SQuAD v1.1: on-topic text that does not hold the answer (issue 7).

The reader first learned "no answer" only from paragraphs of *other* articles, so it never saw an on-topic
paragraph that lacks the answer and answered such questions confidently. Five generators, all seeded:

* ``same_article`` — the question paired with another paragraph of its own article that contains none of
  the gold answer strings (same topic, same names, no answer);
* ``answer_removed`` — the gold paragraph with the sentence(s) holding the answer cut out; kept only when
  no gold answer string is left and at least one sentence remains;
* ``perturbed`` — a year, number or capitalised name of the question swapped for another one of the same kind
  from the same article, which the paragraph does not contain, while the original does occur in it (the
  paragraph now talks about something else: "When did X happen in 1850?" over a paragraph about 1848);
* ``antonym`` — a word of the question swapped for its opposite ("largest" → "smallest", "northern" →
  "southern", "the first" → "the last"; the pairs and their limits are ``bot.opposites``), which the paragraph
  does not contain while the original does (one of SQuAD 2.0's most common kinds of unanswerable question).
  Negation is not generated: "Who did not sign?" is often answered by the same paragraph (the one country
  that stayed out), so it is not "natural" in the issue's sense;
* ``other_article`` — the easy negatives of ``training.squad_data.make_negatives``, kept so that off-topic
  questions stay refused.

``build_hard_negatives`` mixes them by ``DEFAULT_MIX`` (a generator that runs short leaves its share to the
others in order). Sentences are split with the bot's own splitter (``bot.chunking.sentence_spans``) so the
cut paragraphs look like what the chunker serves.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable

from bot.chunking import sentence_spans
from bot.opposites import asked_opposites, families_of, family
from training.squad_data import QAExample, make_negatives

# Shares of the hard-negative mix (documented in training/README.md).
DEFAULT_MIX: dict[str, float] = {
    "same_article": 0.3,
    "answer_removed": 0.3,
    "perturbed": 0.15,
    "antonym": 0.1,
    "other_article": 0.15,
}


_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
# Runs of capitalised words (optionally joined by "of"/"the"/"de"), e.g. "University of Notre Dame".
_NAME = re.compile(r"\b[A-Z][a-zA-Z'\-]+(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][a-zA-Z'\-]+)*")
_NOT_NAMES = frozenset(
    [
        "What",
        "Which",
        "Who",
        "Whom",
        "Whose",
        "When",
        "Where",
        "Why",
        "How",
        "In",
        "On",
        "At",
        "The",
        "A",
        "An",
        "Of",
        "For",
        "From",
        "By",
        "To",
        "As",
        "During",
        "After",
        "Before",
        "Is",
        "Was",
        "Were",
        "Are",
        "Did",
        "Do",
        "Does",
        "Has",
        "Have",
        "Had",
        "Can",
        "Could",
        "Would",
        "Should",
        "Will",
        "Along",
        "Besides",
        "Other",
        "Another",
        "Along",
        "Since",
        "Until",
        "Upon",
        "With",
        "Within",
        "Without",
    ]
)


def contains_any(text: str, needles: tuple[str, ...]) -> bool:
    """Case-insensitive: does ``text`` contain any of ``needles``?"""
    lowered = text.casefold()
    return any(needle.casefold() in lowered for needle in needles if needle.strip())


def _by_article(examples: list[QAExample]) -> dict[str, list[str]]:
    paragraphs: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        if example.context not in paragraphs[example.title][-1:]:
            paragraphs[example.title].append(example.context)
    return paragraphs


def same_article(examples: list[QAExample], count: int, rng: random.Random) -> list[QAExample]:
    """Questions paired with another paragraph of their own article that holds no gold answer string."""
    paragraphs = _by_article(examples)

    def elsewhere(source: QAExample) -> QAExample | None:
        others = [p for p in paragraphs[source.title] if p != source.context and not contains_any(p, source.answers)]
        return _negative(source, "same", rng.choice(others)) if others else None

    return _drawn(examples, count, rng, elsewhere)


def remove_answer_sentences(example: QAExample) -> str | None:
    """The gold paragraph without the sentence(s) that hold the answer, or None when that is not clean."""
    if example.answer_start is None or not example.answers:
        return None
    answer_start, answer_end = example.answer_start, example.answer_start + len(example.answers[0])
    spans = sentence_spans(example.context)
    kept = [example.context[s:e] for s, e in spans if e <= answer_start or s >= answer_end]
    if not kept or len(kept) == len(spans):
        return None
    remaining = " ".join(kept)
    return None if contains_any(remaining, example.answers) else remaining


def answer_removed(examples: list[QAExample], count: int, rng: random.Random) -> list[QAExample]:
    def cut(source: QAExample) -> QAExample | None:
        remaining = remove_answer_sentences(source)
        return None if remaining is None else _negative(source, "cut", remaining)

    return _drawn(examples, count, rng, cut)


def _candidates(text: str) -> dict[str, set[str]]:
    """Years, other numbers and capitalised names in ``text``, by kind."""
    years = set(_YEAR.findall(text))
    numbers = {n for n in _NUMBER.findall(text) if n not in years}
    names = set()
    for match in _NAME.finditer(text):
        words = match.group().split()
        while words and words[0] in _NOT_NAMES:
            words.pop(0)
        if words:
            names.add(" ".join(words))
    return {"year": years, "number": numbers, "name": names}


def perturb_question(example: QAExample, article_text: str, rng: random.Random) -> tuple[str, str, str] | None:
    """(new question, old term, new term): one year/number/name of the question swapped for another of the
    same kind from the article, absent from the paragraph; None when no clean swap exists."""
    in_question = _candidates(example.question)
    in_article = _candidates(article_text)
    options = []
    for kind in ("year", "number", "name"):
        for old in sorted(in_question[kind]):
            if old.casefold() not in example.context.casefold() or contains_any(old, example.answers):
                continue  # the swap must remove something the paragraph talks about, not the answer itself
            replacements = sorted(
                new
                for new in in_article[kind]
                if new.casefold() not in example.context.casefold() and new.casefold() != old.casefold()
            )
            if replacements:
                options.append((old, rng.choice(replacements)))
    if not options:
        return None
    old, new = rng.choice(options)
    question = re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", new, example.question, count=1)
    return (question, old, new) if question != example.question else None


def perturbed(examples: list[QAExample], count: int, rng: random.Random) -> list[QAExample]:
    article_texts = {title: "\n".join(paragraphs) for title, paragraphs in _by_article(examples).items()}

    def swapped(source: QAExample) -> QAExample | None:
        swap = perturb_question(source, article_texts[source.title], rng)
        return None if swap is None else _asked_instead(source, "swap", swap[0])

    return _drawn(examples, count, rng, swapped)


def antonym_question(example: QAExample) -> tuple[str, str, str] | None:
    """(new question, old word, new word): a word of the question swapped for its opposite
    (``bot.opposites``) that the paragraph lacks while it holds the original, and that is not part of the answer;
    None when no such word exists."""
    in_paragraph = families_of(example.context)  # "northern" counts as "north"
    in_answers = families_of(" ".join(example.answers))
    for match, opposite in asked_opposites(example.question):
        word = match.group()
        old = family(word)
        if old not in in_paragraph or family(opposite) in in_paragraph or old in in_answers:
            continue
        new_word = opposite.capitalize() if word[0].isupper() else opposite
        return example.question[: match.start()] + new_word + example.question[match.end() :], word, new_word
    return None


def antonym(examples: list[QAExample], count: int, rng: random.Random) -> list[QAExample]:
    def turned(source: QAExample) -> QAExample | None:
        swap = antonym_question(source)
        return None if swap is None else _asked_instead(source, "antonym", swap[0])

    return _drawn(examples, count, rng, turned)


def other_article(examples: list[QAExample], count: int, rng: random.Random) -> list[QAExample]:
    return make_negatives(examples, count, seed=rng.randrange(2**31))


GENERATORS: dict[str, Callable[[list[QAExample], int, random.Random], list[QAExample]]] = {
    "same_article": same_article,
    "answer_removed": answer_removed,
    "perturbed": perturbed,
    "antonym": antonym,
    "other_article": other_article,
}


def build_hard_negatives(
    examples: list[QAExample], count: int, seed: int, mix: dict[str, float] | None = None
) -> list[QAExample]:
    """``count`` unanswerable examples made from ``examples`` in the shares of ``mix`` (default ``DEFAULT_MIX``)."""
    mix = mix or DEFAULT_MIX
    rng = random.Random(seed)
    made: list[QAExample] = []
    shortfall = 0
    for kind, share in mix.items():
        wanted = round(count * share) + shortfall
        produced = GENERATORS[kind](examples, wanted, rng)
        shortfall = wanted - len(produced)
        made.extend(produced)
    return made[:count]


def _drawn(
    examples: list[QAExample], count: int, rng: random.Random, make: Callable[[QAExample], QAExample | None]
) -> list[QAExample]:
    """Up to ``count`` negatives made from the examples in a seeded random order (``make``: None to skip one)."""
    made = []
    for source in rng.sample(examples, len(examples)):
        if len(made) >= count:
            break
        negative = make(source)
        if negative is not None:
            made.append(negative)
    return made


def _negative(source: QAExample, tag: str, context: str) -> QAExample:
    """The same question over another text that does not answer it."""
    return QAExample(f"{source.qid}__{tag}", source.title, source.question, context, answers=(), answer_start=None)


def _asked_instead(source: QAExample, tag: str, question: str) -> QAExample:
    """Another question over the same paragraph, which does not answer it."""
    return QAExample(f"{source.qid}__{tag}", source.title, question, source.context, answers=(), answer_start=None)
