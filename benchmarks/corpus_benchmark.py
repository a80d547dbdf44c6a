"""Corpus scale: index time, chunks/s, `index add`, answer time, EM/F1 and memory at 1, 10 and 40 articles,
plus a synthetic 100,000-chunk run for latency and memory.

    .venv/bin/python benchmarks/corpus_benchmark.py                       # full run (idle machine: ~1 h)
    .venv/bin/python benchmarks/corpus_benchmark.py --sizes 1,3 --questions 10 --synthetic-chunks 3000  # smoke

The corpus is the 40 SQuAD train articles the reader never trained on (``training.squad_data.split_by_article``,
seed 13; never the Aleppo article, never the SQuAD dev set), read from ../shared/data/squad and written as
article files under ``--workdir`` (default: a temporary folder; never the repo). Each measurement runs in its
own subprocess, so "peak RSS" is that phase's own maximum resident set (``ru_maxrss``):

- build: ``build_index(force=True)`` over the first N articles (index s, chunks/s, peak RSS), then
  ``remove_article`` and ``add_article`` of the last one (``index add`` s: one article embedded, the rest reused);
- serve: ``QAService`` over that index, answer cache off; every question of those N articles up to
  ``--questions`` (ms/question = mean wall clock of ``answer_with_passages``; EM/F1 by ``bot.evaluation``),
  peak RSS of the serving process; HNSW recall@4 against exact Flat search for the question vectors;
- synthetic: real SQuAD train paragraphs, sentence-chunked and repeated to ``--synthetic-chunks`` chunks with
  random unit vectors (embedding 100,000 chunks would take the run's whole budget; retrieval cost does not
  depend on what the vectors mean), written as a real build (``bot.indexing.write_build``: FAISS Flat, then
  HNSW, and bm25s) by one process; another loads it with ``QAService.from_settings`` as the bot does and
  answers ``--synthetic-questions`` questions: load s, answer latency p50/p95, serving peak RSS.

Prints one markdown table per part and writes JSON to ``--out`` if given. Timings are only meaningful on an
otherwise idle machine; the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stats import percentile

ROOT = Path(__file__).resolve().parents[1]
SEED = 13


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _settings(workdir: Path, size: int, faiss_index: str = "auto"):
    """config.yaml with the corpus of ``size`` articles (or synthetic chunks) under ``workdir``, cache off."""
    from bot.config import load_settings, with_overrides

    return with_overrides(
        load_settings(),
        {
            "articles_dir": workdir / f"articles-{size}",
            "index_dir": workdir / f"index-{size}",
            "answers.cache_size": 0,
            "index.faiss_index": faiss_index,
        },
    )


def write_corpus(workdir: Path, sizes: list[int], squad: Path | None) -> list[dict]:
    """Article files for each size (the first N held-out articles) and the questions of the 40."""
    sys.path.insert(0, str(ROOT))
    from training.squad_data import DEFAULT_SQUAD_PATH, load_articles, split_by_article

    articles = load_articles(squad or DEFAULT_SQUAD_PATH)
    titles = split_by_article(articles, seed=SEED).validation_titles[: max(sizes)]
    by_title = {a["title"]: a for a in articles}
    for size in sizes:
        folder = workdir / f"articles-{size}"
        folder.mkdir(parents=True, exist_ok=True)
        for title in titles[:size]:
            text = "\n\n".join(p["context"].strip() for p in by_title[title]["paragraphs"])
            (folder / f"{_slug(title)}.txt").write_text(f"---\ntitle: {title.replace('_', ' ')}\n---\n{text}\n")
    return [
        {"title": title, "question": qa["question"], "answers": [a["text"] for a in qa["answers"]], "id": qa["id"]}
        for title in titles
        for paragraph in by_title[title]["paragraphs"]
        for qa in paragraph["qas"]
    ]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


# -- phases, each run in its own process ------------------------------------------------------------------


def phase_build(workdir: Path, size: int) -> dict:
    from bot.indexing import add_article, build_index, remove_article

    settings = _settings(workdir, size)
    started = time.perf_counter()
    built = build_index(settings, force=True, progress_bar=False)
    seconds = time.perf_counter() - started
    peak = _peak_rss_mb()
    last = sorted(settings.articles_dir.glob("*.txt"))[-1]
    result = {"articles": size, "chunks": built.documents, "index_s": seconds,
              "chunks_per_s": built.documents / seconds, "build_peak_rss_mb": peak,
              "faiss_index": built.faiss_index}  # fmt: skip
    if size > 1:
        kept = Path(tempfile.mkdtemp()) / last.name
        kept.write_bytes(last.read_bytes())
        started = time.perf_counter()
        remove_article(settings, last.stem, progress_bar=False)
        result["index_remove_s"] = time.perf_counter() - started
        started = time.perf_counter()
        _, added = add_article(settings, kept, progress_bar=False)
        result["index_add_s"] = time.perf_counter() - started
        result["index_add_embedded_chunks"] = added.embedded_chunks
    return result


def phase_serve(workdir: Path, size: int, questions: list[dict], limit: int) -> dict:
    import numpy as np

    from bot.answering import QAService
    from bot.evaluation import EvalQuestion, evaluate

    settings = _settings(workdir, size)
    titles = {p.read_text().split("\n")[1].removeprefix("title: ") for p in settings.articles_dir.glob("*.txt")}
    chosen = [q for q in questions if q["title"].replace("_", " ") in titles]
    chosen = random.Random(SEED).sample(chosen, min(limit, len(chosen)))
    service = QAService.from_settings(settings)
    service.answer("warm-up question about nothing in particular?")
    items = [EvalQuestion(qid=q["id"], question=q["question"], golds=tuple(q["answers"])) for q in chosen]
    started = time.perf_counter()
    report = evaluate(service, items)
    seconds = time.perf_counter() - started
    result = {"articles": size, "questions": len(items), "ms_per_question": 1000 * seconds / len(items),
              "em": report.exact_match, "f1": report.f1, "recall_at_k": report.retrieval_recall,
              "serve_peak_rss_mb": _peak_rss_mb()}  # fmt: skip
    from bot.pipeline import build_text_embedder

    embedder = build_text_embedder(settings)
    embedder.warm_up()
    queries = np.stack([np.asarray(embedder.run(text=q["question"])["embedding"]) for q in chosen])
    vectors = np.load(service._index.build_dir / "embeddings.npy")
    result["hnsw_recall_at_4"] = hnsw_recall(vectors, queries, settings)
    return result


def hnsw_recall(vectors, queries, settings, k: int = 4) -> float:
    """Share of exact (Flat) top-k neighbours that HNSW, as configured, also returns."""
    import faiss
    import numpy as np

    flat = faiss.IndexFlatL2(vectors.shape[1])
    flat.add(vectors)
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], settings.index.hnsw_m)
    hnsw.hnsw.efConstruction = settings.index.hnsw_ef_construction
    hnsw.add(vectors)
    hnsw.hnsw.efSearch = settings.index.hnsw_ef_search
    k = min(k, len(vectors))
    _, exact = flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    _, approx = hnsw.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return 100 * float(np.mean([len(set(e) & set(a)) / k for e, a in zip(exact, approx, strict=True)]))


def phase_synthetic_build(workdir: Path, chunks: int, faiss_index: str, squad: Path | None) -> dict:
    """Write a real build of ``chunks`` real-text chunks with random unit vectors (``bot.indexing.write_build``)."""
    import numpy as np
    from haystack import Document

    sys.path.insert(0, str(ROOT))
    from bot.articles import Article, ArticleInfo
    from bot.chunking import SentenceChunker, article_document
    from bot.indexing import index_write_lock, write_build
    from training.squad_data import DEFAULT_SQUAD_PATH, load_articles

    settings = _settings(workdir, chunks, faiss_index)
    chunker = SentenceChunker(settings.chunking)
    base: list[Document] = []
    for article in load_articles(squad or DEFAULT_SQUAD_PATH):
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        info = ArticleInfo(article_id=_slug(article["title"]), title=article["title"])
        base.extend(chunker.run([article_document(Article(info=info, text=text))])["documents"])
        if len(base) >= chunks:
            break
    documents = [
        Document(content=base[i % len(base)].content, meta={**base[i % len(base)].meta, "copy": i // len(base)})
        for i in range(chunks)
    ]
    del base
    vectors = np.random.default_rng(SEED).standard_normal((chunks, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    infos = [ArticleInfo(article_id="synthetic", title="synthetic")]
    started = time.perf_counter()
    with index_write_lock(settings.resolve(settings.index_dir), 0):
        used = write_build(settings, infos, ["synthetic"], "synthetic", documents, vectors)
    return {"chunks": chunks, "faiss_index": used, "write_build_s": time.perf_counter() - started,
            "build_peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def phase_synthetic_serve(workdir: Path, chunks: int, faiss_index: str, questions: list[dict], limit: int) -> dict:
    """Answer latency and memory of a QAService over the synthetic build, loaded as the bot loads it."""
    from bot.answering import QAService

    settings = _settings(workdir, chunks, faiss_index)
    started = time.perf_counter()
    service = QAService.from_settings(settings)
    load_s = time.perf_counter() - started
    service.answer("warm-up question about nothing in particular?")
    latencies = []
    for q in random.Random(SEED).sample(questions, min(limit, len(questions))):
        started = time.perf_counter()
        service.answer(q["question"])
        latencies.append(1000 * (time.perf_counter() - started))
    return {"load_s": load_s, "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "serve_peak_rss_mb": _peak_rss_mb()}  # fmt: skip


# -- orchestration ----------------------------------------------------------------------------------------


def _in_subprocess(args: list[str], timeout: float) -> dict:
    command = [sys.executable, __file__, *args]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"phase {args[:3]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.1f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,10,40", help="article counts, comma-separated (at most 40)")
    parser.add_argument("--questions", type=int, default=300, help="questions asked per size (sampled, seed 13)")
    parser.add_argument("--synthetic-chunks", type=int, default=100_000, help="0 skips the synthetic run")
    parser.add_argument("--synthetic-questions", type=int, default=100)
    parser.add_argument("--workdir", type=Path, help="where the corpus and indexes go (default: a temp folder)")
    parser.add_argument("--squad", type=Path, help="SQuAD train JSON(.gz) (default: ../shared/data/squad)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per phase subprocess")
    parser.add_argument("--phase", choices=["build", "serve", "synthetic-build", "synthetic-serve"],
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--faiss-index", default="flat", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        questions = json.loads((args.workdir / "questions.json").read_text()) if args.workdir else []
        if args.phase == "build":
            result = phase_build(args.workdir, args.size)
        elif args.phase == "serve":
            result = phase_serve(args.workdir, args.size, questions, args.questions)
        elif args.phase == "synthetic-build":
            result = phase_synthetic_build(args.workdir, args.size, args.faiss_index, args.squad)
        else:
            result = phase_synthetic_serve(args.workdir, args.size, args.faiss_index, questions,
                                           args.synthetic_questions)  # fmt: skip
        print(json.dumps(result))
        return

    sizes = sorted({int(s) for s in args.sizes.split(",")})
    if not sizes or sizes[0] < 1 or sizes[-1] > 40:
        parser.error("--sizes must be between 1 and 40")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="qabot-corpus-"))
    workdir.mkdir(parents=True, exist_ok=True)
    questions = write_corpus(workdir, sizes, args.squad)
    (workdir / "questions.json").write_text(json.dumps(questions))
    common = ["--workdir", str(workdir), "--questions", str(args.questions)]
    if args.squad:
        common += ["--squad", str(args.squad)]
    print(f"corpus in {workdir}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for size in sizes:
        row = _in_subprocess(["--phase", "build", "--size", str(size), *common], args.timeout)
        row.update(_in_subprocess(["--phase", "serve", "--size", str(size), *common], args.timeout))
        rows.append(row)
        print(f"  {size} article(s) done", flush=True)
    synthetic = []
    if args.synthetic_chunks:
        for faiss_index in ("flat", "hnsw"):
            synthetic_args = ["--size", str(args.synthetic_chunks), "--faiss-index", faiss_index,
                              "--synthetic-questions", str(args.synthetic_questions), *common]  # fmt: skip
            row = _in_subprocess(["--phase", "synthetic-build", *synthetic_args], args.timeout)
            row.update(_in_subprocess(["--phase", "synthetic-serve", *synthetic_args], args.timeout))
            synthetic.append(row)
            shutil.rmtree(workdir / f"index-{args.synthetic_chunks}", ignore_errors=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (timings need an idle machine)\n")
    print(_table(rows, ["articles", "chunks", "index_s", "chunks_per_s", "index_add_s", "index_add_embedded_chunks",
                        "index_remove_s", "build_peak_rss_mb", "questions", "ms_per_question", "em", "f1",
                        "recall_at_k", "hnsw_recall_at_4", "serve_peak_rss_mb"]))  # fmt: skip
    if synthetic:
        print()
        columns = ["chunks", "faiss_index", "write_build_s", "build_peak_rss_mb", "load_s", "p50_ms", "p95_ms",
                   "serve_peak_rss_mb"]  # fmt: skip
        print(_table(synthetic, columns))
    if args.out:
        args.out.write_text(json.dumps({"sizes": rows, "synthetic": synthetic, "measured_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
