"""Answerable training questions drawn so that "the question's words are elsewhere" stays answerable (issue 7).

The hard negatives teach the reader to refuse when the sentence that would answer is gone
(``hard_negatives.answer_removed``) or a name no longer matches (``perturbed``). Continued on that mix, the reader
also learned to refuse answerable questions whose answer sits in a sentence that shares few words with the
question (the answer named in one sentence, the question's words in the one before: what a reader must connect,
e.g. a pronoun or "the city" for a name). Those questions are a minority of SQuAD's positives (about a sixth
cover at most a third of the question's content words in the answer's sentence: ``python -m training.positives``
counts them), so a random draw of positives leaves the contrast to the ``answer_removed`` negatives thin.
``draw_positives`` can over-draw them: a share of the positives comes from the low-coverage questions, the rest
from all others, seeded.
"""

from __future__ import annotations

import random

from bot.chunking import sentence_spans
from bot.verifier import content_stems
from training.squad_data import QAExample

LOW_COVERAGE = 1 / 3  # at most this share of the question's content words in the answer's sentence


def answer_sentence_coverage(example: QAExample) -> float:
    """Share of the question's content words (``bot.verifier`` stems) found in the sentence holding the answer."""
    asked = content_stems(example.question)
    if not asked or example.answer_start is None:
        return 1.0
    spans = sentence_spans(example.context)
    sentence = next((example.context[a:b] for a, b in spans if a <= example.answer_start < b), example.context)
    return len(asked & content_stems(sentence)) / len(asked)


def draw_positives(
    pool: list[QAExample], wanted: int, low_coverage_share: float, rng: random.Random
) -> list[QAExample]:
    """``wanted`` distinct questions of ``pool``: ``low_coverage_share`` of them (as far as there are enough) whose
    answer sentence covers at most ``LOW_COVERAGE`` of the question, the rest drawn from the other questions.

    With ``low_coverage_share`` 0 this is exactly ``rng.sample(pool, wanted)``, the draw of earlier runs.
    """
    if low_coverage_share <= 0:
        return rng.sample(pool, wanted)
    is_low = [answer_sentence_coverage(ex) <= LOW_COVERAGE for ex in pool]
    low = [ex for ex, flag in zip(pool, is_low, strict=True) if flag]
    rest = [ex for ex, flag in zip(pool, is_low, strict=True) if not flag]
    from_low = min(round(wanted * low_coverage_share), len(low))
    drawn = rng.sample(low, from_low) + rng.sample(rest, min(wanted - from_low, len(rest)))
    rng.shuffle(drawn)
    return drawn


def main() -> None:
    """Print how many training questions of the split are low-coverage (the figure the docs quote)."""
    from training.squad_data import load_articles, split_by_article

    train = split_by_article(load_articles()).train
    low = sum(answer_sentence_coverage(example) <= LOW_COVERAGE for example in train)
    print(f"{low:,} of {len(train):,} training questions ({100 * low / len(train):.1f} %) have at most a third of")
    print("their content words in the answer's sentence")


if __name__ == "__main__":
    main()
