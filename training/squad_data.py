"""Loading SQuAD v1.1, carving a by-article validation split, and pairing questions with negatives.

The validation split is chosen by whole articles so that no validation paragraph is ever seen in training;
negatives (a question paired with a paragraph of another article) teach the reader a null score.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SQUAD_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad" / "train-v1.1.json.gz"


@dataclass(frozen=True)
class QAExample:
    """One question over one paragraph; ``answers`` is empty for a negative (unanswerable) pairing."""

    qid: str
    title: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_start: int | None  # character offset of the first answer; None for negatives

    @property
    def is_negative(self) -> bool:
        return not self.answers


@dataclass(frozen=True)
class SquadSplit:
    train: list[QAExample]
    validation: list[QAExample]
    validation_titles: list[str]


def load_articles(path: Path = DEFAULT_SQUAD_PATH) -> list[dict]:
    """Read the SQuAD JSON (optionally gzipped) and return its ``data`` list of articles."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)["data"]


def _examples_of(article: dict) -> list[QAExample]:
    examples = []
    for paragraph in article["paragraphs"]:
        for qa in paragraph["qas"]:
            answers = tuple(answer["text"] for answer in qa["answers"])
            examples.append(
                QAExample(
                    qid=qa["id"],
                    title=article["title"],
                    question=qa["question"].strip(),
                    context=paragraph["context"],
                    answers=answers,
                    answer_start=qa["answers"][0]["answer_start"],
                )
            )
    return examples


def split_by_article(
    articles: list[dict], min_articles: int = 40, min_questions: int = 4000, seed: int = 13
) -> SquadSplit:
    """Hold out whole articles (a seeded random choice) until both minimums are met."""
    order = sorted(range(len(articles)), key=lambda i: articles[i]["title"])
    random.Random(seed).shuffle(order)
    held_out: list[int] = []
    question_count = 0
    for index in order:
        if len(held_out) >= min_articles and question_count >= min_questions:
            break
        held_out.append(index)
        question_count += sum(len(p["qas"]) for p in articles[index]["paragraphs"])
    held_out_set = set(held_out)
    train = [ex for i, a in enumerate(articles) if i not in held_out_set for ex in _examples_of(a)]
    validation = [ex for i in sorted(held_out_set) for ex in _examples_of(articles[i])]
    titles = sorted(articles[i]["title"] for i in held_out_set)
    return SquadSplit(train=train, validation=validation, validation_titles=titles)


def make_negatives(examples: list[QAExample], count: int, seed: int) -> list[QAExample]:
    """Pair ``count`` questions with a random paragraph of a *different* article, labelled unanswerable."""
    rng = random.Random(seed)
    contexts_by_title: dict[str, list[str]] = {}
    for ex in examples:
        paragraphs = contexts_by_title.setdefault(ex.title, [])
        if not paragraphs or paragraphs[-1] != ex.context:
            paragraphs.append(ex.context)
    titles = sorted(contexts_by_title)
    negatives = []
    for source in rng.sample(examples, min(count, len(examples))):
        other_title = source.title
        while other_title == source.title:
            other_title = rng.choice(titles)
        negatives.append(
            QAExample(
                qid=f"{source.qid}__neg",
                title=other_title,
                question=source.question,
                context=rng.choice(contexts_by_title[other_title]),
                answers=(),
                answer_start=None,
            )
        )
    return negatives
