"""Answer verifier: is the reader's span really the answer, or is the question on topic but unanswered here?

The reader's margin alone cannot tell (issue 7): asked "Who leads the Free Syrian Army?" over an article that
names the FSA but never its leader, it finds a confident person-shaped span. What separates the two cases is
mostly *lexical*: when the article answers, the answer's sentence holds the question's content words; when it
does not, a word that carries the question ("leads", "wrote", "killed", a name or a number) is missing. So the
served confidence is a small logistic regression over the reader's score and a few such overlap features,
fitted on what ``QAService`` serves for held-out SQuAD (answerable questions plus on-topic unanswerable ones,
``training/fit_verifier.py``), and stored as a tiny JSON file beside the reader (``verifier.json``). One
feature is not about missing words: a question that asks about the *north* answered from a sentence about the
*south* covers every word but one (``bot.opposites``; antonym-swapped questions are one of SQuAD 2.0's most
common unanswerable kinds, and the reader alone answers nearly all of them: ``training/evaluate_reader.py
--hard-negatives`` reports it by kind).

Why not a second model (a cross-encoder verifier): on 2 shared cores every extra forward pass costs the
answer time the speed work bought; these features cost microseconds. Words are compared by a crude stem
(lower case, a few English suffixes off, first 6 letters) because no lemmatiser ships offline here.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.answer_types import fits_the_question
from bot.errors import ModelLoadError
from bot.opposites import says_the_opposite

# Feature names, in the order of the weights in verifier.json (serving refuses a file fitted for other features).
FEATURES = (
    "reader_logit",  # logit of the reader's calibrated score (Platt: linear in the span-null margin)
    "runner_up_gap",  # reader logit minus the best other distinct span's (ambiguity among candidates)
    "sentence_coverage",  # share of the question's content words found in the answer's sentence
    "passage_coverage",  # ... in the whole passage the answer comes from
    "missing_in_passage",  # how many content words the passage lacks (capped at 4)
    "rare_missing",  # names and numbers of the question the passage lacks (capped at 2)
    "answer_in_question",  # share of the answer's words already in the question (restating it is no answer)
    "better_sentence",  # how much better another sentence of the passage covers the question
    "logit_x_coverage",  # reader_logit * sentence_coverage: a confident span in a sentence about the question
    "long_missing",  # long (specific) content words, 7+ letters, the passage lacks (capped at 3)
    "says_the_opposite",  # 1 when the answer's sentence holds the opposite of a word asked and not the word
)

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_STOPWORD_TEXT = """a about above after again against all am an and any are as at be been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers him his how i if in into is it its itself just me more most my no nor not of off on once only or other our
    out over own same she should so some such than that the their them then there these they this those through
    to too under until up very was we were what when where which while who whom whose why will with would you your yours
    s t according also called did does kind type name named many much one ones there's whats
    article say said says"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SUFFIXES = ("ing", "ers", "ed", "es", "er", "ly", "s")


def _fold(text: str) -> str:
    """Lower case without accents, so that 'Brasília' meets 'Brasilia'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


@functools.lru_cache(maxsize=16_384)  # pure, and every candidate span re-stems the same question and passage
def stem(word: str) -> str:
    """Crude stem that makes 'leads'/'leader' and 'recaptured'/'recapture' meet; first 6 letters."""
    word = _fold(word).replace("'s", "")
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:6]


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.casefold() not in _STOPWORDS]


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}


def rare_terms(question: str) -> set[str]:
    """Stems of the question's names (capitalised words after the first) and numbers."""
    words = _WORD.findall(question)
    picked = {w for w in words[1:] if w[0].isupper() and w.casefold() not in _STOPWORDS}
    picked |= {w for w in words if w[0].isdigit()}
    return {stem(w) for w in picked}


def _logit(probability: float) -> float:
    p = min(max(probability, 1e-5), 1 - 1e-5)
    return math.log(p / (1 - p))


def span_features(
    question: str, answer: str, reader_score: float, sentence: str, passage: str, other_scores: list[float]
) -> np.ndarray:
    """The verifier's features (``FEATURES`` order) for one answer span.

    ``sentence``: the sentence(s) holding the span; ``passage``: the retrieved passage it comes from;
    ``other_scores``: the reader scores of the question's other distinct spans.
    """
    asked = content_stems(question)
    in_sentence, in_passage = content_stems(sentence), content_stems(passage)
    answer_stems = content_stems(answer)
    logit = _logit(reader_score)
    best_other = max((_logit(score) for score in other_scores), default=logit - 10.0)
    sentence_coverage = len(asked & in_sentence) / len(asked) if asked else 1.0
    best_coverage = max(
        (len(asked & content_stems(part)) / len(asked) for part in _SENTENCE_END.split(passage) if asked),
        default=sentence_coverage,
    )
    long_words = {stem(w) for w in content_words(question) if len(w) >= 7}
    return np.array(
        [
            logit,
            min(max(logit - best_other, -10.0), 10.0),
            sentence_coverage,
            len(asked & in_passage) / len(asked) if asked else 1.0,
            min(len(asked - in_passage), 4),
            min(len(rare_terms(question) - in_passage), 2),
            len(answer_stems & asked) / len(answer_stems) if answer_stems else 0.0,
            max(best_coverage - sentence_coverage, 0.0),
            logit * sentence_coverage,
            min(len(long_words - in_passage), 3),
            float(says_the_opposite(question, sentence)),
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class AnswerVerifier:
    """P(answer is right) = sigmoid(weights · features + bias), fitted by ``training/fit_verifier.py``."""

    weights: np.ndarray
    bias: float
    threshold: float  # the no-answer threshold chosen with the fit (see training/fit_verifier.py)

    @classmethod
    def from_file(cls, path: Path, older: bool = False) -> AnswerVerifier:
        """The verifier fitted in ``path``. Serving takes only a file fitted for exactly ``FEATURES``; ``older``
        (``fit_verifier --baseline``) also takes one fitted before later features existed, weighing them 0 so
        that it scores as it did when it was fitted."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fitted = tuple(data["features"])
            known = fitted == FEATURES or (older and fitted and fitted == FEATURES[: len(fitted)])
            if not known or len(data["weights"]) != len(fitted):
                raise ValueError(f"fitted for features {data['features']}, this qabot computes {list(FEATURES)}")
            weights = np.zeros(len(FEATURES), dtype=np.float64)
            weights[: len(fitted)] = [float(w) for w in data["weights"]]
            return cls(weights=weights, bias=float(data["bias"]), threshold=float(data["threshold"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(f"reader.verifier: cannot read {path}: {error}") from error

    def scores(self, spans: list[dict]) -> np.ndarray:
        """P(right) of each span from what the verifier reads of it (``span_features``' arguments, as
        ``bot.answering.verifier_inputs`` gives them): the regression's probability, or 0 for a span without the
        shape of answer its question asks for (``bot.answer_types``). Serving and ``fit_verifier`` both score
        spans here, so the threshold is chosen and the metrics reported on exactly what is served."""
        if not spans:
            return np.zeros(0)
        probabilities = self.probabilities(np.array([span_features(**span) for span in spans]))
        fits = np.array([fits_the_question(span["question"], span["answer"]) for span in spans])
        return np.where(fits, probabilities, 0.0)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """P(right) of each row of a feature matrix: the one sigmoid that serving and ``fit_verifier`` share."""
        z = np.clip(features @ self.weights + self.bias, -60.0, 60.0)
        return 1.0 / (1.0 + np.exp(-z))


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1.0, iterations: int = 100) -> tuple:
    """(weights, bias) of an L2-regularised logistic regression by Newton's method (numpy only: scikit-learn
    is not installed, and a dozen features need nothing more)."""
    x = np.hstack([features, np.ones((len(features), 1))])
    w = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -60, 60)))
        gradient = x.T @ (p - labels) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])
