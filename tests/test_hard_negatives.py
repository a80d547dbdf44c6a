"""Hard-negative generators (training/hard_negatives.py): each rule holds, the mix is seeded and as documented."""

from __future__ import annotations

import collections
import random

from training.evaluate_reader import Prediction, score
from training.hard_negatives import (
    DEFAULT_MIX,
    answer_removed,
    antonym,
    antonym_question,
    build_hard_negatives,
    contains_any,
    perturbed,
    remove_answer_sentences,
    same_article,
)
from training.squad_data import QAExample

PARAGRAPHS = {
    "Normandy": [
        "The Normans gave their name to Normandy, a region in France. They were descended from Norse raiders. "
        "In 911 Rollo swore fealty to King Charles III of West Francia.",
        "The Norman dynasty had a major political impact in 1066. William the Conqueror took England that year. "
        "Many castles were built in the decades after.",
        "Norman architecture uses round arches. The abbey at Caen was founded in 1063 by William.",
    ],
    "Oxygen": [
        "Oxygen is a chemical element with symbol O. It was isolated by Carl Scheele in 1772.",
        "Joseph Priestley published his findings on oxygen in 1774. Antoine Lavoisier named the element.",
    ],
}
QUESTIONS = [
    ("Normandy", 0, "In what year did Rollo swear fealty to Charles III?", "911"),
    ("Normandy", 0, "Who were the Normans descended from?", "Norse raiders"),
    ("Normandy", 1, "Who took England in 1066?", "William the Conqueror"),
    ("Normandy", 2, "What kind of arches does Norman architecture use?", "round arches"),
    ("Normandy", 2, "Who founded the abbey at Caen?", "William"),  # also in paragraph 1: never paired with it
    ("Normandy", 2, "When was the abbey at Caen founded?", "1063"),
    ("Oxygen", 0, "Who isolated oxygen in 1772?", "Carl Scheele"),
    ("Oxygen", 1, "Who named the element?", "Antoine Lavoisier"),
]


def _examples() -> list[QAExample]:
    made = []
    for i, (title, paragraph, question, answer) in enumerate(QUESTIONS):
        context = PARAGRAPHS[title][paragraph]
        made.append(QAExample(f"q{i}", title, question, context, (answer,), context.index(answer)))
    return made


def test_same_article_pairs_other_paragraphs_without_the_answer():
    made = [negative for seed in range(8) for negative in same_article(_examples(), 10, random.Random(seed))]
    assert made
    originals = {ex.question: ex for ex in _examples()}
    for negative in made:
        source = originals[negative.question]
        assert negative.title == source.title and negative.context != source.context
        assert negative.context in PARAGRAPHS[source.title]
        assert not contains_any(negative.context, source.answers) and negative.is_negative


def test_answer_sentence_removed_leaves_no_answer_and_keeps_the_rest():
    example = _examples()[1]  # "Norse raiders", second sentence
    remaining = remove_answer_sentences(example)
    assert remaining is not None and "Norse" not in remaining
    assert remaining.startswith("The Normans gave their name") and "Rollo swore fealty" in remaining
    removed = answer_removed(_examples(), 10, random.Random(0))
    assert removed  # the loop below checks nothing when the generator makes no negative
    for negative in removed:
        assert not contains_any(negative.context, _examples()[int(negative.qid[1:].split("__")[0])].answers)


def test_perturbed_question_swaps_a_term_the_paragraph_lacks():
    made = perturbed(_examples(), 10, random.Random(0))
    assert made
    originals = {ex.qid: ex for ex in _examples()}
    for negative in made:
        source = originals[negative.qid.split("__")[0]]
        assert negative.context == source.context and negative.question != source.question
        new_words = set(negative.question.split()) - set(source.question.split())
        assert new_words and all(word.strip("?").casefold() not in source.context.casefold() for word in new_words)


def test_mix_is_seeded_and_in_documented_shares():
    first = build_hard_negatives(_examples(), 8, seed=3)
    assert first == build_hard_negatives(_examples(), 8, seed=3)
    assert first != build_hard_negatives(_examples(), 8, seed=4)
    assert 6 <= len(first) <= 8 and all(n.is_negative for n in first)  # 6 questions: a generator may run short
    kinds = collections.Counter(n.qid.split("__")[1] for n in first)
    assert set(kinds) <= {"same", "cut", "swap", "antonym", "neg"}
    assert kinds["same"] == round(8 * DEFAULT_MIX["same_article"])
    assert abs(sum(DEFAULT_MIX.values()) - 1) < 1e-9


def _asked(question: str, context: str, answer: str) -> QAExample:
    return QAExample("a0", "Test", question, context, (answer,), context.index(answer))


def test_antonym_swaps_a_word_for_an_opposite_the_paragraph_lacks():
    paragraph = "Rouen is the largest city of Normandy. The northern coast has many ports."
    swapped = antonym_question(_asked("What is the largest city of Normandy?", paragraph, "Rouen"))
    assert swapped == ("What is the smallest city of Normandy?", "largest", "smallest")
    swapped = antonym_question(_asked("What does the northern coast have?", paragraph, "many ports"))
    assert swapped == ("What does the southern coast have?", "northern", "southern")
    made = antonym([_asked("What is the largest city of Normandy?", paragraph, "Rouen")], 5, random.Random(0))
    assert [(n.question, n.context, n.answers, n.qid) for n in made] == [
        ("What is the smallest city of Normandy?", paragraph, (), "a0__antonym")
    ]


def test_antonym_only_where_the_paragraph_cannot_answer_the_new_question():
    both = "Rouen is the largest city of Normandy and Lisieux the smallest."
    assert antonym_question(_asked("What is the largest city of Normandy?", both, "Rouen")) is None
    alternative = "Rouen is the largest city of Normandy."
    assert antonym_question(_asked("Is Rouen the largest or second city?", alternative, "largest")) is None
    names = "In 911 Rollo swore fealty to King Charles III of West Francia."
    assert antonym_question(_asked("Who ruled West Francia in 911?", names, "King Charles III")) is None
    in_answer = "Rollo was the first king and the first duke."
    assert antonym_question(_asked("Who was the first duke?", in_answer, "the first duke")) is None


def test_antonym_swaps_most_only_after_the():
    paragraph = "Cider is the most popular drink in Normandy. Most farms grow apples."
    swapped = antonym_question(_asked("What is the most popular drink in Normandy?", paragraph, "Cider"))
    assert swapped == ("What is the least popular drink in Normandy?", "most", "least")
    assert antonym_question(_asked("What do most farms grow?", paragraph, "apples")) is None


def test_evaluation_reports_no_answer_recall_per_kind():
    """``evaluate_reader --hard-negatives`` says which kinds of unanswerable question the reader still answers."""
    positive = _examples()[0]
    negatives = [
        QAExample(f"q{i}__{kind}", "T", "?", "c", (), None) for i, kind in enumerate(["cut", "cut", "antonym", "neg"])
    ]
    margins = [2.0, -1.0, 3.0, 0.5, -4.0]  # the positive answered; the second cut and the antonym answered
    predictions = [Prediction("911", margin, 0.0) for margin in margins]
    by_kind = score([positive], negatives, predictions)["no_answer_recall_by_kind"]
    assert by_kind == {"antonym": "0.0 % of 1", "cut": "50.0 % of 2", "neg": "100.0 % of 1"}
