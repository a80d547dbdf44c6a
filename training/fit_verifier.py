"""Fit the answer verifier (``bot.verifier``) on what QAService serves, and report it on held-out data.

Calibration used to be fitted on single-paragraph reads with other-article negatives; the bot answers over a
retrieved corpus and meets on-topic questions its articles do not answer (issue 7). So this script:

1. builds a corpus from the 40 held-out SQuAD articles (``split_by_article``, seed 13; never the Aleppo
   article): each article a text file, in some paragraphs the sentence(s) holding one question's answer cut
   out (that question is now unanswerable: no gold string is left anywhere in the article);
2. indexes it with qabot's own indexing and asks, through the real ``QAService`` (retrieval + reader):
   answerable questions, the cut questions, perturbed questions (``training.hard_negatives.perturb_question``),
   antonym-swapped questions (``antonym_question``: "largest" → "smallest") and questions of held-out articles
   left out of the corpus (off-corpus);
3. fits the logistic regression on the articles of one half (``fit``) and reports the other half
   (``report``): AUROC (right vs wrong among answered), ECE, F1, no-answer accuracy, reader score vs verifier.

    python -m training.fit_verifier --out models/reader/verifier.json --work /work/artifacts/trust/verifier

The per-question rows are cached in WORK/rows.jsonl (``--reuse-rows`` refits without asking again);
``--baseline models/reader/verifier.json`` also reports the shipped verifier on the same rows.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from tqdm import tqdm

from bot.answer_types import fits_the_question
from bot.config import load_settings, with_overrides
from bot.evaluation import auroc, expected_calibration_error
from bot.opposites import families_of, family, says_the_opposite
from bot.squad_metrics import best_over_golds, token_f1
from bot.verifier import FEATURES, AnswerVerifier, fit_logistic, span_features
from training.hard_negatives import antonym_question, contains_any, perturb_question, remove_answer_sentences
from training.squad_data import DEFAULT_SQUAD_PATH, QAExample, load_articles, split_by_article

OFF_CORPUS_PER_HALF = 3  # held-out articles per half whose questions are asked of a corpus without them
CUT_SHARE = 0.3  # share of paragraphs that lose one question's answer sentence(s)
READER_THRESHOLD = 0.5  # the no-answer threshold of the reader's own calibrated score (no verifier)


def build_mix(
    squad: Path, seed: int, answerable_per_half: int, hard_per_half: int, antonyms_per_half: int = 150
) -> tuple[dict, list[dict]]:
    """({article file name: text}, questions as dicts with question, golds, kind, half).

    ``antonyms_per_half`` antonym-swapped questions (``training.hard_negatives.antonym_question``; as many as
    the corpus has, ~55 a half, up to that number) are drawn after everything else, with their own random
    generator, so that adding them left the earlier draws as they were (verifiers fitted before them compare on
    the same questions)."""
    split = split_by_article(load_articles(squad))
    by_title: dict[str, list[QAExample]] = defaultdict(list)
    for example in split.validation:
        by_title[example.title].append(example)
    rng, antonym_rng = random.Random(seed), random.Random(seed + 1)
    titles = sorted(by_title)
    rng.shuffle(titles)
    halves = {"fit": titles[: len(titles) // 2], "report": titles[len(titles) // 2 :]}
    corpus: dict[str, str] = {}
    questions: list[dict] = []
    for half, half_titles in halves.items():
        off_corpus, in_corpus = half_titles[:OFF_CORPUS_PER_HALF], half_titles[OFF_CORPUS_PER_HALF:]
        answerable, cut, swapped, outside, opposite = [], [], [], [], []
        for title in in_corpus:
            text, article_cut, kept = _cut_article(by_title[title], rng)
            corpus[re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") + ".txt"] = f"---\ntitle: {title}\n---\n{text}"
            cut += [{"question": ex.question, "golds": [], "kind": "cut"} for ex in article_cut]
            for example in kept:
                if not contains_any(text, example.answers):
                    continue
                answerable.append({"question": example.question, "golds": list(example.answers), "kind": "answerable"})
                swap = perturb_question(example, text, rng)
                if swap is not None:
                    swapped.append({"question": swap[0], "golds": [], "kind": "perturbed"})
                turned = antonym_question(example)
                if turned is not None and family(turned[2]) not in families_of(text):
                    opposite.append({"question": turned[0], "golds": [], "kind": "antonym"})
        for title in off_corpus:
            outside += [{"question": ex.question, "golds": [], "kind": "off_corpus"} for ex in by_title[title]]
        share = hard_per_half // 3
        picked = rng.sample(answerable, min(answerable_per_half, len(answerable)))
        picked += rng.sample(cut, min(share, len(cut))) + rng.sample(swapped, min(share, len(swapped)))
        picked += rng.sample(outside, min(hard_per_half - 2 * share, len(outside)))
        picked += antonym_rng.sample(opposite, min(antonyms_per_half, len(opposite)))
        questions += [{**q, "half": half} for q in picked]
    return corpus, questions


def _cut_article(examples: list[QAExample], rng: random.Random) -> tuple[str, list[QAExample], list[QAExample]]:
    """(article text with some answer sentences cut, the questions made unanswerable, the untouched ones)."""
    paragraphs: dict[str, list[QAExample]] = {}
    for example in examples:
        paragraphs.setdefault(example.context, []).append(example)
    texts, cut, kept = [], [], []
    for context, asked in paragraphs.items():
        if rng.random() < CUT_SHARE:
            for example in rng.sample(asked, len(asked)):
                remaining = remove_answer_sentences(example)
                if remaining is not None:
                    texts.append(remaining)
                    cut.append(example)
                    break
            else:
                texts.append(context)
                kept += asked
            continue
        texts.append(context)
        kept += asked
    text = "\n\n".join(texts)
    cut = [example for example in cut if not contains_any(text, example.answers)]
    return text, cut, kept


def ask(settings, questions: list[dict]) -> list[dict]:
    """Run every question through QAService (verifier off); record what the verifier reads of each distinct span
    (features are computed from these at fit time, so a new feature needs no new run)."""
    from bot.answering import QAService, verifier_inputs

    service = QAService.from_settings(settings)
    rows = []
    for item in tqdm(questions, desc="asking", mininterval=10):
        spans, _ = service.candidates(item["question"])
        candidates = [
            {
                "text": span.data,
                "reader_score": span.score,
                "f1": best_over_golds(token_f1, span.data or "", tuple(item["golds"])) if item["golds"] else 0.0,
                "inputs": verifier_inputs(item["question"], spans, i),
            }
            for i, span in enumerate(spans)
        ]
        best = candidates[0] if candidates else {"text": None, "reader_score": 0.0, "f1": 0.0, "inputs": None}
        rows.append({**item, **best, "candidates": candidates})
    return rows


def report(rows: list[dict], scores: np.ndarray, threshold: float) -> dict:
    """Served metrics when abstaining below ``threshold``: answerable F1 (abstaining scores 0), no-answer
    accuracy per kind, AUROC and ECE of the confidence among answered questions (and over all questions)."""
    answered = scores >= threshold
    right = np.array([r["f1"] >= 0.5 if r["golds"] else False for r in rows], dtype=float)
    answerable = np.array([bool(r["golds"]) for r in rows])
    f1 = np.array([r["f1"] for r in rows])
    out = {
        "questions": len(rows),
        "answerable_f1": round(100 * float((f1 * answered)[answerable].mean()), 2),
        "answerable_answered_pct": round(100 * float(answered[answerable].mean()), 2),
        "no_answer_accuracy_unanswerable": round(100 * float((~answered)[~answerable].mean()), 2),
        "auroc_answered": round(100 * auroc(scores[answered], right[answered]), 2),
        "auroc_all": round(100 * auroc(scores, right), 2),
        "ece_answered": round(100 * expected_calibration_error(scores[answered], right[answered]), 2),
        "ece_all": round(100 * expected_calibration_error(scores, right), 2),
    }
    for kind in sorted({r["kind"] for r in rows} - {"answerable"}):
        mask = np.array([r["kind"] == kind for r in rows])
        out[f"refused_{kind}_pct"] = round(100 * float((~answered)[mask].mean()), 2)
    return out


def _reranked(rows: list[dict], verifier: AnswerVerifier) -> tuple[list[dict], np.ndarray]:
    """What serving would give if the verifier also chose among the reader's spans (not shipped: compared)."""
    chosen, scores = [], []
    for row in rows:
        candidates = row.get("candidates") or []
        if not candidates:
            chosen.append(row)
            scores.append(0.0)
            continue
        probabilities = verifier.scores([c["inputs"] for c in candidates])
        best = int(np.argmax(probabilities))
        chosen.append({**row, "f1": candidates[best]["f1"]})
        scores.append(float(probabilities[best]))
    return chosen, np.array(scores)


def choose_threshold(rows: list[dict], verifier: np.ndarray, reader: np.ndarray, max_f1_drop: float) -> float:
    """The highest threshold (0.025 steps) whose served answerable F1 stays within ``max_f1_drop`` points of the
    reader alone at its own 0.5 threshold: refuse as much as that F1 budget allows."""
    budget = report(rows, reader, READER_THRESHOLD)["answerable_f1"] - max_f1_drop
    best = 0.0
    for step in range(1, 40):
        threshold = round(step * 0.025, 3)  # rounded before use: 12 * 0.025 is 0.30000000000000004
        if report(rows, verifier, threshold)["answerable_f1"] >= budget:
            best = threshold
    return best


def verifier_scores(rows: list[dict], verifier: AnswerVerifier) -> np.ndarray:
    """The served confidence of each row's answer under ``verifier``; 0 where the reader found no span."""
    with_span = [i for i, r in enumerate(rows) if r["inputs"]]
    scores = np.zeros(len(rows))
    scores[with_span] = verifier.scores([rows[i]["inputs"] for i in with_span])
    return scores


def main(
    out: Annotated[Path, typer.Option(help="Write the verifier JSON here (models/reader/verifier.json).")],
    work: Annotated[Path, typer.Option(help="Corpus, index and per-question rows (outside the repo).")],
    squad: Path = DEFAULT_SQUAD_PATH,
    seed: int = 13,
    answerable_per_half: int = 400,
    hard_per_half: int = 400,
    antonyms_per_half: Annotated[
        int, typer.Option(help="Also ask up to this many antonym-swapped questions per half (0: none).")
    ] = 150,
    l2: float = 1.0,
    max_f1_drop: Annotated[float, typer.Option(help="Threshold rule: answerable F1 lost vs the reader alone.")] = 1.0,
    reuse_rows: Annotated[bool, typer.Option(help="Refit on WORK/rows.jsonl without asking again.")] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="Also report this verifier JSON (e.g. the shipped one) on the same rows, at its own "
            "threshold and at the new one: is the refit better, or only another point on the same trade-off?"
        ),
    ] = None,
) -> None:
    """Fit on the ``fit`` half, report both halves, write the verifier JSON."""
    started = time.time()
    baseline_verifier = AnswerVerifier.from_file(baseline, older=True) if baseline is not None else None
    rows_file = work / "rows.jsonl"
    if reuse_rows:
        rows = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    else:
        corpus, questions = build_mix(squad, seed, answerable_per_half, hard_per_half, antonyms_per_half)
        articles_dir, index_dir = work / "articles", work / "index"
        articles_dir.mkdir(parents=True, exist_ok=True)
        for stale in articles_dir.glob("*.txt"):
            stale.unlink()
        for name, text in corpus.items():
            (articles_dir / name).write_text(text, encoding="utf-8")
        settings = with_overrides(
            load_settings(),
            {"articles_dir": articles_dir.resolve(), "index_dir": index_dir.resolve(), "reader.verifier": None},
        )
        from bot.indexing import build_index

        build_index(settings, progress_bar=True)
        rows = ask(settings, questions)
        rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def arrays(half: str) -> tuple[list[dict], np.ndarray, np.ndarray]:
        chosen = [r for r in rows if r["half"] == half]
        x = np.array([span_features(**r["inputs"]) if r["inputs"] else np.zeros(len(FEATURES)) for r in chosen])
        y = np.array([1.0 if r["golds"] and r["f1"] >= 0.5 else 0.0 for r in chosen])
        return chosen, x, y

    fit_rows, x_fit, y_fit = arrays("fit")
    weights, bias = fit_logistic(x_fit, y_fit, l2=l2)
    fitted_verifier = AnswerVerifier(weights=weights, bias=bias, threshold=READER_THRESHOLD)  # threshold unused

    def scored(half: str) -> tuple[list[dict], np.ndarray, np.ndarray]:
        chosen = [r for r in rows if r["half"] == half]
        return chosen, verifier_scores(chosen, fitted_verifier), np.array([r["reader_score"] for r in chosen])

    threshold = choose_threshold(*scored("fit"), max_f1_drop)
    results = {}
    for half in ("fit", "report"):
        chosen, served, reader_scores = scored(half)
        reranked_rows, reranked_scores = _reranked(chosen, fitted_verifier)
        results[half] = {
            f"verifier at {threshold}": report(chosen, served, threshold),
            f"reader alone at {READER_THRESHOLD}": report(chosen, reader_scores, READER_THRESHOLD),
            f"verifier choosing the span, at {threshold} (not served)": report(
                reranked_rows, reranked_scores, threshold
            ),
        }
        opposite = [r for r in chosen if r["inputs"] and says_the_opposite(r["question"], r["inputs"]["sentence"])]
        results[half]["answer sentence says the opposite (feature fired), by kind"] = {
            kind: f"{sum(r['kind'] == kind for r in opposite)} of {sum(r['kind'] == kind for r in chosen)}"
            for kind in sorted({r["kind"] for r in chosen})
        }
        shape_misses = [
            r for r in chosen if r["inputs"] and not fits_the_question(r["question"], r["inputs"]["answer"])
        ]
        results[half]["answers without the shape asked for (bot.answer_types, scored 0)"] = {
            "spans": len(shape_misses),
            "right (F1 >= 0.5)": sum(1 for r in shape_misses if r["golds"] and r["f1"] >= 0.5),
        }
        if baseline_verifier is not None:
            old = verifier_scores(chosen, baseline_verifier)
            for at in sorted({baseline_verifier.threshold, threshold}):
                results[half][f"baseline {baseline} at {at}"] = report(chosen, old, at)
    fitted = {
        "features": list(FEATURES),
        "weights": [round(float(w), 5) for w in weights],
        "bias": round(float(bias), 5),
        "threshold": threshold,
        "fitted_on": (
            "training/fit_verifier.py: QAService over a corpus of the SQuAD v1.1 held-out articles "
            f"(split_by_article seed 13), half 'fit' ({len(fit_rows)} questions: "
            f"{', '.join(sorted({r['kind'] for r in fit_rows}))}), seed {seed}, l2 {l2}; "
            "threshold: the highest (step 0.025) keeping the fit "
            f"half's answerable F1 within {max_f1_drop} points of the reader alone at {READER_THRESHOLD}"
        ),
        "metrics": results,
    }
    out.write_text(json.dumps(fitted, indent=2) + "\n", encoding="utf-8")
    typer.echo(json.dumps(results, indent=2))
    typer.echo(f"weights: {dict(zip(FEATURES, fitted['weights'], strict=True))} bias {fitted['bias']}")
    typer.echo(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    typer.run(main)
