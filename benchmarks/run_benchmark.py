"""qabot vs a stock Haystack pipeline: latency, throughput, cold start, index build, memory, accuracy.

    .venv/bin/python benchmarks/run_benchmark.py                 # full run (~5 min on 2 cores), writes results.json
    .venv/bin/python benchmarks/run_benchmark.py --quick         # a smoke run on a few questions (no results.json)
    .venv/bin/python benchmarks/run_benchmark.py --reader /tmp/reader_test   # another reader folder, both systems

Both systems answer the same questions about the same cleaned article with the same reader weights:

* **qabot**: ``QAService.from_settings`` with ``config.yaml`` as shipped (default: int8 ONNX embedder and reader,
  FAISS + BM25 fused by reciprocal rank, sentence chunks), except ``answers.cache_size = 0`` so that every
  measured answer is computed; the answer cache is measured on its own line ("cached repeat").
* **stock**: Haystack defaults end to end. ``DocumentSplitter()`` (split_by="word", split_length=200,
  split_overlap=0) over the same cleaned article text (``bot.articles.load_articles``),
  ``SentenceTransformersDocumentEmbedder``/``SentenceTransformersTextEmbedder`` on the same packaged MiniLM
  (``bot.models.embedder_model``), ``FAISSDocumentStore`` + ``FAISSEmbeddingRetriever`` (top_k=10), and
  ``TransformersExtractiveReader(model=<the same reader folder>)`` with its defaults (PyTorch fp32, top_k=20,
  max_seq_length=384, stride=128, no_answer=True). The only settings we pass are the model paths,
  ``embedding_dim=384`` (the store needs the embedder's dimension) and ``progress_bar=False`` on the embedders
  (a tqdm bar per question is console noise, not part of the pipeline).
  Stock "no answer" rule: the reader returns its spans and one no-answer entry (``data=None``, score = the
  probability that none of its top-k spans is right), sorted by score. If the top entry is the no-answer entry
  the system abstains, otherwise its answer is the top span's text. (No threshold of our own: that is how a
  stock pipeline is read.)

How each number is measured (see benchmarks/README.md for more):

* each system is loaded in its own subprocess (``--worker``), so imports and memory never mix;
* warm latency: one warm-up question that is not in the set, then every distinct question once, sequentially;
  p50/p95/max over those (no question is repeated);
* throughput: N questions (``--throughput-questions``) shared by 1, 4 and 16 client threads calling
  ``answer()``; 1 client is the sequential pass restricted to the same N questions. For qabot also
  ``answer_many`` on batches of 4 and 16 (what the Telegram bot does with questions that arrive together);
* cold start: a fresh ``python -c`` child per run that imports, loads and answers one question; wall clock from
  just before spawning it to the moment its answer line is read, plus phase times (interpreter up, imports
  done, loaded, answered) printed by the child. The OS file cache is warm (this is a process restart, not a
  reboot);
* index build: in its own subprocess, the time of the build call after imports (qabot:
  ``bot.indexing.build_index(force=True)`` into a temporary index_dir; stock: split + embed + write + save,
  embedder load included for both), and the subprocess' wall clock including interpreter and imports;
* peak RSS: ``ru_maxrss`` of the serving subprocess after loading and answering every question once (and at
  the end, after the 16-client run);
* accuracy: official SQuAD v1.1 EM/F1 (``bot.squad_metrics``) over the answerable questions (an abstention
  scores 0), no-answer accuracy = share of unanswerable questions on which the system abstains, and decision
  accuracy = answered-vs-abstained right over all questions (as ``qabot eval``).

Every timing is meaningless while something else loads the CPU: the script prints the load average and warns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from stats import percentile

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
QUESTIONS_FILE = PROJECT_ROOT / "tests" / "data" / "aleppo_questions.json"
WARM_UP_QUESTION = "What is this article about?"  # not in the question set: never counted, never repeated
COLD_START_QUESTION = "Who backs Ahrar al-Sham?"
EMBEDDING_DIM = 384  # all-MiniLM-L6-v2
# The environment before anything from bot/ is imported (bot/__init__.py sets defaults of its own).
_BASE_ENV = dict(os.environ)

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


# ----------------------------------------------------------------------------------------------------------
# The two systems (used by the workers and the cold-start children; heavy imports stay inside functions)
# ----------------------------------------------------------------------------------------------------------


def qabot_settings(spec: dict, cache_size: int | None = 0):
    """config.yaml (or $QABOT_CONFIG) with the benchmark's reader, index folder and cache size."""
    from bot.config import load_settings, with_overrides

    overrides: dict = {"reader.model": spec["reader"]}
    if spec.get("qabot_index_dir"):
        overrides["index_dir"] = Path(spec["qabot_index_dir"])
    if cache_size is not None:
        overrides["answers.cache_size"] = cache_size
    return with_overrides(load_settings(), overrides)


class QabotSystem:
    name = "qabot"

    def __init__(self, spec: dict, cache_size: int | None = 0) -> None:
        from bot.answering import QAService

        self.settings = qabot_settings(spec, cache_size)
        self.service = QAService.from_settings(self.settings)

    def answer(self, question: str) -> tuple[str | None, float]:
        answer = self.service.answer(question)
        return answer.text, answer.score

    def answer_many(self, questions: list[str]) -> list[tuple[str | None, float]]:
        return [(a.text, a.score) for a in self.service.answer_many(questions)]

    def enable_cache(self, size: int = 512) -> None:
        """Switch the answer cache on for the "cached repeat" line (the service reads the size per call)."""
        from bot.config import with_overrides

        self.service.settings = with_overrides(self.service.settings, {"answers.cache_size": size})


def stock_store(path: str | None = None):
    from haystack_integrations.document_stores.faiss import FAISSDocumentStore

    store = FAISSDocumentStore(embedding_dim=EMBEDDING_DIM)
    if path:
        store.load(path)
    return store


class StockSystem:
    """The stock Haystack query pipeline: text embedder -> FAISS retriever -> TransformersExtractiveReader."""

    name = "stock"

    def __init__(self, spec: dict) -> None:
        from haystack import Pipeline
        from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder
        from haystack_integrations.components.readers.transformers import TransformersExtractiveReader
        from haystack_integrations.components.retrievers.faiss import FAISSEmbeddingRetriever

        store = stock_store(spec["stock_store"])
        pipeline = Pipeline()
        pipeline.add_component(
            "text_embedder", SentenceTransformersTextEmbedder(model=spec["embedder"], progress_bar=False)
        )
        pipeline.add_component("retriever", FAISSEmbeddingRetriever(document_store=store))  # top_k=10
        pipeline.add_component("reader", TransformersExtractiveReader(model=spec["reader"]))
        pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
        pipeline.connect("retriever.documents", "reader.documents")
        pipeline.warm_up()
        self.pipeline = pipeline

    def answer(self, question: str) -> tuple[str | None, float]:
        result = self.pipeline.run({"text_embedder": {"text": question}, "reader": {"query": question}})
        answers = result["reader"]["answers"]  # sorted by score; the no-answer entry has data=None
        if not answers:
            return None, 0.0
        top = answers[0]
        return top.data, float(top.score)  # data None = the no-answer entry won: abstain


def build_stock_index(spec: dict) -> dict:
    """Stock indexing pipeline: DocumentSplitter() -> document embedder -> DocumentWriter(FAISS); then save."""
    from haystack import Document, Pipeline
    from haystack.components.preprocessors import DocumentSplitter
    from haystack.components.writers import DocumentWriter
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
    )

    started = time.perf_counter()
    store = stock_store()
    pipeline = Pipeline()
    pipeline.add_component("splitter", DocumentSplitter())
    pipeline.add_component("embedder", SentenceTransformersDocumentEmbedder(model=spec["embedder"], progress_bar=False))
    pipeline.add_component("writer", DocumentWriter(document_store=store))
    pipeline.connect("splitter.documents", "embedder.documents")
    pipeline.connect("embedder.documents", "writer.documents")
    documents = [
        Document(content=a["text"], meta={"article_id": a["article_id"], "title": a["title"]}) for a in spec["articles"]
    ]
    written = pipeline.run({"splitter": {"documents": documents}})["writer"]["documents_written"]
    store.save(spec["stock_store"])
    return {"build_s": time.perf_counter() - started, "chunks": written}


def build_qabot_index(spec: dict) -> dict:
    from bot.indexing import build_index

    settings = qabot_settings(spec)
    started = time.perf_counter()
    result = build_index(settings, force=True, progress_bar=False)
    return {"build_s": time.perf_counter() - started, "chunks": result.documents}


# ----------------------------------------------------------------------------------------------------------
# Worker subprocesses
# ----------------------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _thread_settings() -> dict:
    info: dict = {}
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def _run_clients(answer, questions: list[str], clients: int) -> dict:
    """``clients`` threads take questions from one shared queue until it is empty; wall clock for all."""
    lock = threading.Lock()
    queue = iter(questions)
    latencies: list[float] = []
    errors: list[str] = []

    def client() -> None:
        while True:
            with lock:
                question = next(queue, None)
            if question is None:
                return
            begin = time.perf_counter()
            try:
                answer(question)
            except Exception as error:  # report, don't hide: a pipeline that fails under load is a finding
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                latencies.append(time.perf_counter() - begin)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "questions": len(questions),
        "answered": len(latencies),
        "wall_s": wall,
        "qps": len(latencies) / wall if wall else 0.0,
        "latency_p50_s": percentile(latencies, 50) if latencies else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def _run_batches(answer_many, questions: list[str], batch: int) -> dict:
    started = time.perf_counter()
    for begin in range(0, len(questions), batch):
        answer_many(questions[begin : begin + batch])
    wall = time.perf_counter() - started
    return {"batch": batch, "questions": len(questions), "wall_s": wall, "qps": len(questions) / wall}


def serve_worker(system_name: str, spec: dict) -> dict:
    """Load one system, answer every question once (latency, answers), then the throughput runs."""
    began = time.perf_counter()
    system = QabotSystem(spec) if system_name == "qabot" else StockSystem(spec)
    load_s = time.perf_counter() - began
    rss_loaded = _rss_mb()
    system.answer(WARM_UP_QUESTION)

    questions: list[str] = spec["questions"]
    latencies, predictions = [], []
    for question in questions:
        begin = time.perf_counter()
        text, score = system.answer(question)
        latencies.append(time.perf_counter() - begin)
        predictions.append({"question": question, "prediction": text, "score": round(score, 4)})
    rss_answered = _rss_mb()

    subset = questions[: spec["throughput_questions"]]
    throughput = []
    for clients in spec["clients"]:
        if clients == 1:  # the sequential pass over the same questions is exactly one client
            wall = sum(latencies[: len(subset)])
            throughput.append(
                {
                    "clients": 1,
                    "questions": len(subset),
                    "answered": len(subset),
                    "wall_s": wall,
                    "qps": len(subset) / wall,
                    "latency_p50_s": percentile(latencies[: len(subset)], 50),
                    "errors": 0,
                    "first_error": None,
                }
            )
        else:
            throughput.append({**_run_clients(system.answer, subset, clients), "rss_after_mb": _rss_mb()})

    batches, cached = [], None
    if isinstance(system, QabotSystem):
        for batch in spec["batch_sizes"]:
            batches.append({**_run_batches(system.answer_many, subset, batch), "rss_after_mb": _rss_mb()})
        system.enable_cache()
        repeat = questions[:10]
        for question in repeat:
            system.answer(question)
        cached_latencies = []
        for question in repeat:
            begin = time.perf_counter()
            system.answer(question)
            cached_latencies.append(time.perf_counter() - begin)
        cached = {
            "questions": len(repeat),
            "p50_s": percentile(cached_latencies, 50),
            "max_s": max(cached_latencies),
            # enable_cache relies on QAService reading answers.cache_size per call; check that it did
            "cache_effective": percentile(cached_latencies, 50) < 0.1 * percentile(latencies, 50),
        }

    return {
        "system": system_name,
        "load_s": load_s,
        "latencies_s": latencies,
        "predictions": predictions,
        "throughput": throughput,
        "answer_many": batches,
        "cached_repeat": cached,
        "rss_loaded_mb": rss_loaded,
        "rss_answered_mb": rss_answered,
        "rss_end_mb": _rss_mb(),
        **_thread_settings(),
    }


def index_worker(system_name: str, spec: dict) -> dict:
    result = build_qabot_index(spec) if system_name == "qabot" else build_stock_index(spec)
    return {**result, "rss_mb": _rss_mb()}


def cold_child(system_name: str, spec_path: str, question: str) -> None:
    """Body of a cold-start ``python -c`` child: import, load, answer one question, print phase times."""
    spawned = float(os.environ["BENCH_SPAWN_TIME"])

    def phase(name: str) -> None:
        print(f"PHASE {name} {time.time() - spawned:.4f}", flush=True)

    phase("interpreter")
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if system_name == "qabot":
        import bot.answering  # noqa: F401
    else:
        import haystack  # noqa: F401
        import haystack_integrations.components.embedders.sentence_transformers
        import haystack_integrations.components.readers.transformers
        import haystack_integrations.components.retrievers.faiss  # noqa: F401
    phase("imports")
    system = QabotSystem(spec, cache_size=None) if system_name == "qabot" else StockSystem(spec)
    phase("loaded")
    text, _ = system.answer(question)
    phase("answered")
    print("ANSWER " + json.dumps(text), flush=True)


# ----------------------------------------------------------------------------------------------------------
# The parent: orchestration, scoring, the table
# ----------------------------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(_BASE_ENV)
    env.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded, for either system
    env.setdefault("TRANSFORMERS_OFFLINE", env["HF_HUB_OFFLINE"])
    env.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def run_worker(job: str, system: str, spec_path: Path, workdir: Path, timeout: float) -> dict:
    result_path = workdir / f"{job}-{system}.json"
    log_path = workdir / f"{job}-{system}.log"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        job,
        "--system",
        system,
        "--spec",
        str(spec_path),
        "--result",
        str(result_path),
    ]
    started = time.perf_counter()
    with log_path.open("w") as log:
        completed = subprocess.run(command, env=child_env(), stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    wall = time.perf_counter() - started
    if completed.returncode != 0 or not result_path.exists():
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{job} worker for {system} failed (exit {completed.returncode}):\n{tail}")
    result = json.loads(result_path.read_text())
    result["process_wall_s"] = wall
    return result


def cold_start(system: str, spec_path: Path, timeout: float) -> dict:
    code = (
        f"import sys; sys.path[:0] = [{str(BENCH_DIR)!r}, {str(PROJECT_ROOT)!r}]; "
        f"import run_benchmark; run_benchmark.cold_child({system!r}, {str(spec_path)!r}, {COLD_START_QUESTION!r})"
    )
    env = child_env()
    with tempfile.TemporaryFile("w+") as errors:
        env["BENCH_SPAWN_TIME"] = repr(time.time())
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        watchdog = threading.Timer(timeout, process.kill)  # a hung child ends the read loop below
        watchdog.start()
        phases: dict[str, float] = {}
        wall, answer = None, None
        try:
            for line in process.stdout:  # type: ignore[union-attr]
                if line.startswith("PHASE "):
                    _, name, seconds = line.split()
                    phases[name] = float(seconds)
                elif line.startswith("ANSWER "):
                    wall = time.perf_counter() - started
                    answer = json.loads(line[len("ANSWER ") :])
                    break
            process.wait()
        finally:
            watchdog.cancel()
        if wall is None or process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(
                f"cold start of {system} gave no answer (exit {process.returncode}):\n{errors.read()[-3000:]}"
            )
    return {"wall_s": wall, "phases_s": phases, "answer": answer}


def load_questions(limit: int | None) -> tuple[list[str], list[tuple[str, ...]]]:
    """Distinct questions (first occurrence kept) and their gold answers (empty tuple = unanswerable)."""
    from bot.evaluation import load_questions as load_question_file

    seen, questions, golds = set(), [], []
    for item in load_question_file(QUESTIONS_FILE):
        key = " ".join(item.question.casefold().split()).rstrip("?!. ")
        if key in seen or key == WARM_UP_QUESTION.casefold().rstrip("?"):
            continue
        seen.add(key)
        questions.append(item.question)
        golds.append(item.golds)
    if limit:  # keep the mix of answerable and unanswerable questions in a short run
        answerable = [i for i, g in enumerate(golds) if g][: max(1, limit - limit // 4)]
        unanswerable = [i for i, g in enumerate(golds) if not g][: limit // 4]
        keep = sorted(answerable + unanswerable)
        questions, golds = [questions[i] for i in keep], [golds[i] for i in keep]
    return questions, golds


def score(predictions: list[dict], golds: list[tuple[str, ...]]) -> dict:
    from bot.squad_metrics import best_over_golds, exact_match, token_f1

    em = f1 = abstained_right = decisions_right = 0.0
    answerable = unanswerable = 0
    for row, gold in zip(predictions, golds, strict=True):
        predicted = row["prediction"]
        decisions_right += (predicted is not None) == bool(gold)
        if gold:
            answerable += 1
            em += best_over_golds(exact_match, predicted or "", gold)
            f1 += best_over_golds(token_f1, predicted or "", gold)
        else:
            unanswerable += 1
            abstained_right += predicted is None
    return {
        "answerable": answerable,
        "unanswerable": unanswerable,
        "exact_match": 100 * em / answerable if answerable else None,
        "f1": 100 * f1 / answerable if answerable else None,
        "no_answer_accuracy": 100 * abstained_right / unanswerable if unanswerable else None,
        "decision_accuracy": 100 * decisions_right / len(golds),
    }


def cpu_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot, all cores together (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is inside user)
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished (waited-for) children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def other_cpu_share(seconds: float = 2.0) -> float:
    """Share of the machine (0..1) that other processes use right now, sampled over ``seconds``."""
    busy, own = cpu_busy_seconds(), own_cpu_seconds()
    time.sleep(seconds)
    other = (cpu_busy_seconds() - busy) - (own_cpu_seconds() - own)
    return max(0.0, other) / (seconds * (os.cpu_count() or 1))


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "nproc": int(nproc),
        "cpu": cpu,
        "memory_gib": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    found = {}
    for name in (
        "haystack-ai",
        "faiss-haystack",
        "transformers-haystack",
        "sentence-transformers-haystack",
        "sentence-transformers",
        "transformers",
        "torch",
        "onnxruntime",
        "faiss-cpu",
        "tokenizers",
        "numpy",
        "qabot",
    ):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    try:
        revision = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--", "bot", "config.yaml"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        found["qabot_git"] = revision + ("+uncommitted" if dirty else "")
    except OSError:
        pass
    return found


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(stock, qabot) -> str:
    if stock is None or qabot is None or qabot == 0:
        return "n/a"
    return f"{stock / qabot:.2f}×"


def table(results: dict) -> str:
    q, s = results["qabot"], results["stock"]
    rows: list[tuple[str, float | None, float | None, int, str]] = []

    def add(label: str, qv, sv, digits: int = 1, compare: str = "ratio") -> None:
        rows.append((label, qv, sv, digits, compare))

    add("index build, in process (s) ↓", q["index"]["build_s"], s["index"]["build_s"], 2)
    add("index build, incl. interpreter + imports (s) ↓", q["index"]["process_wall_s"], s["index"]["process_wall_s"], 2)
    add("chunks indexed", q["index"]["chunks"], s["index"]["chunks"], 0, "none")
    add("cold start to first answer (s) ↓", q["cold_start"]["wall_s"], s["cold_start"]["wall_s"], 2)
    for phase in ("imports", "loaded", "answered"):
        add(
            f"  cold start: {phase} at (s)",
            q["cold_start"]["phases_s"].get(phase),
            s["cold_start"]["phases_s"].get(phase),
            2,
        )
    for key, label in (("p50", "p50"), ("p95", "p95"), ("max", "max")):
        add(f"warm latency {label} (ms) ↓", q["latency_ms"][key], s["latency_ms"][key], 0)
    for qt, st in zip(q["throughput"], s["throughput"], strict=True):
        add(
            f"throughput, {qt['clients']} client{'s' if qt['clients'] > 1 else ''} calling answer() (q/s) ↑",
            qt["qps"],
            st["qps"],
            2,
        )
    for batch in q.get("answer_many", []):
        add(f"throughput, answer_many batches of {batch['batch']} (q/s) ↑", batch["qps"], None, 2)
    if q.get("cached_repeat") and q["cached_repeat"]["cache_effective"]:
        add("cached repeat latency p50 (ms) ↓", q["cached_repeat"]["p50_s"] * 1000, None, 3)
    add("peak RSS after loading (MB) ↓", q["rss_loaded_mb"], s["rss_loaded_mb"], 0)
    add("peak RSS after loading + answering all once (MB) ↓", q["rss_answered_mb"], s["rss_answered_mb"], 0)
    if q["throughput"][-1].get("rss_after_mb") and s["throughput"][-1].get("rss_after_mb"):
        add(
            f"peak RSS after the {q['throughput'][-1]['clients']}-client run (MB) ↓",
            q["throughput"][-1]["rss_after_mb"],
            s["throughput"][-1]["rss_after_mb"],
            0,
        )
    if q.get("answer_many"):
        add(
            f"peak RSS after answer_many batches of {q['answer_many'][-1]['batch']} (MB) ↓",
            q["answer_many"][-1]["rss_after_mb"],
            None,
            0,
        )
    for key, label in (
        ("exact_match", "exact match, answerable"),
        ("f1", "F1, answerable"),
        ("no_answer_accuracy", "no-answer accuracy, unanswerable"),
        ("decision_accuracy", "answer/abstain decision accuracy, all"),
    ):
        add(f"{label} (%) ↑", q["accuracy"][key], s["accuracy"][key], 1, "diff")

    lines = ["| metric | qabot | stock Haystack | stock / qabot |", "|---|---:|---:|---:|"]
    for label, qv, sv, digits, compare in rows:
        if compare == "diff":
            versus = "n/a" if qv is None or sv is None else f"{sv - qv:+.1f} pts"
        else:
            versus = _ratio(sv, qv) if compare == "ratio" else ""
        lines.append(f"| {label} | {_fmt(qv, digits)} | {_fmt(sv, digits)} | {versus} |")
    return "\n".join(lines)


def header(results: dict) -> str:
    m, v, c = results["machine"], results["versions"], results["config"]
    errors = [
        f"{name} {t['clients']} clients: {t['errors']} errors ({t['first_error']})"
        for name in ("qabot", "stock")
        for t in results[name]["throughput"]
        if t["errors"]
    ]
    lines = [
        f"## qabot vs stock Haystack — {results['date']}",
        "",
        f"- machine: {m['nproc']} CPUs (nproc), {m['cpu']}, {m['memory_gib']} GiB RAM, {m['platform']}; "
        f"load average before/after: {results['loadavg_before']} / {results['loadavg_after']}; CPU used by other "
        f"processes: {results['other_cpu_share_before']:.0%} just before, {results['other_cpu_share_during']:.0%} "
        "during the run",
        f"- software: Python {m['python']}, " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        f"- reader: {c['reader']} — qabot runs its int8 ONNX export ({c['qabot_reader']}), stock the same "
        "weights in PyTorch fp32 (TransformersExtractiveReader defaults)",
        f"- qabot: config.yaml ({c['qabot_summary']}), answer cache off except the cached-repeat line",
        "- stock: DocumentSplitter() word/200/0 → SentenceTransformers MiniLM → FAISS Flat top_k=10 → "
        "TransformersExtractiveReader defaults (top_k 20, max_seq_length 384, no_answer)",
        f"- questions: {c['questions']} distinct ({c['answerable']} answerable, {c['unanswerable']} unanswerable) "
        f"from tests/data/aleppo_questions.json, each asked once for latency/accuracy; throughput over the first "
        f"{c['throughput_questions']}",
        f"- threads: stock torch {results['stock'].get('torch_threads', '?')}; qabot ONNX Runtime default "
        "(one per physical core)",
        "- ↓ lower is better, ↑ higher is better; stock / qabot > 1 on a ↓ row (< 1 on a ↑ row) means qabot is "
        "better; accuracy rows show stock − qabot in percentage points",
    ]
    if errors:
        lines.append("- errors under concurrency: " + "; ".join(errors))
    if results.get("warning"):
        lines.append(f"- **warning: {results['warning']}**")
    return "\n".join(lines)


def summarise(worker: dict, golds: list[tuple[str, ...]]) -> dict:
    latencies = worker["latencies_s"]
    worker["latency_ms"] = {
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "max": max(latencies) * 1000,
        "mean": statistics.fmean(latencies) * 1000,
    }
    worker["accuracy"] = score(worker["predictions"], golds)
    for row, gold in zip(worker["predictions"], golds, strict=True):
        row["golds"] = list(gold)
    return worker


def main_parent(args: argparse.Namespace) -> None:
    from bot.articles import load_articles
    from bot.config import load_settings, with_overrides
    from bot.models import embedder_model, reader_model

    total_started = time.perf_counter()
    settings = load_settings()
    if args.reader:
        settings = with_overrides(settings, {"reader.model": str(Path(args.reader).resolve())})
    reader = reader_model(settings)
    if not Path(reader).is_dir():
        sys.exit(f"reader folder {reader} does not exist (train/export it, or pass --reader PATH)")
    articles = load_articles(settings.resolve(settings.articles_dir))
    limit = 8 if args.quick else args.questions
    questions, golds = load_questions(limit)
    if not args.quick and not args.questions and len(questions) < 40:
        sys.exit(f"only {len(questions)} distinct questions; the benchmark needs at least 40")
    clients = [1, 4] if args.quick else args.clients
    throughput_questions = min(len(questions), 8 if args.quick else args.throughput_questions or len(questions))
    cold_runs = 1 if args.quick else args.cold_runs

    loadavg_before = tuple(round(x, 2) for x in os.getloadavg())
    busy_before = other_cpu_share()
    if busy_before > 0.1:
        print(
            f"WARNING: other processes use {busy_before:.0%} of the CPUs right now; timings will be off",
            file=sys.stderr,
        )
    cpu_at_start, own_at_start, wall_at_start = cpu_busy_seconds(), own_cpu_seconds(), time.perf_counter()

    workdir = Path(tempfile.mkdtemp(prefix="qabot-bench-"))
    spec = {
        "reader": reader,
        "embedder": embedder_model(settings),
        "qabot_index_dir": str(workdir / "qabot-index"),
        "stock_store": str(workdir / "stock-index" / "documents"),
        "articles": [{"article_id": a.info.article_id, "title": a.info.title, "text": a.text} for a in articles],
        "questions": questions,
        "throughput_questions": throughput_questions,
        "clients": clients,
        "batch_sizes": [c for c in clients if c > 1],
    }
    (workdir / "stock-index").mkdir()
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    print(f"benchmark: {len(questions)} questions, reader {reader}, work folder {workdir}", file=sys.stderr)

    results: dict = {"qabot": {}, "stock": {}}
    for system in ("qabot", "stock"):
        print(f"[{time.perf_counter() - total_started:6.1f}s] {system}: index build", file=sys.stderr)
        results[system]["index"] = run_worker("index", system, spec_path, workdir, args.timeout)
    for system in ("qabot", "stock"):
        print(f"[{time.perf_counter() - total_started:6.1f}s] {system}: serving", file=sys.stderr)
        results[system].update(summarise(run_worker("serve", system, spec_path, workdir, args.timeout), golds))
    for system in ("qabot", "stock"):
        runs = []
        for run in range(cold_runs):
            print(
                f"[{time.perf_counter() - total_started:6.1f}s] {system}: cold start {run + 1}/{cold_runs}",
                file=sys.stderr,
            )
            runs.append(cold_start(system, spec_path, args.timeout))
        best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]  # the median run (upper for even counts)
        results[system]["cold_start"] = {**best, "runs_s": [r["wall_s"] for r in runs]}

    run_wall = time.perf_counter() - wall_at_start
    other_cpu = max(0.0, (cpu_busy_seconds() - cpu_at_start) - (own_cpu_seconds() - own_at_start))
    busy_during = other_cpu / (run_wall * (os.cpu_count() or 1))
    warning = None
    if busy_before > 0.05 or busy_during > 0.05:
        warning = (
            f"other processes used {busy_before:.0%} of the CPUs just before the run and {busy_during:.0%} during "
            "it: the timings are not representative"
        )
        print(f"WARNING: {warning}", file=sys.stderr)
    qabot_settings_ = settings
    results.update(
        {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine_info(),
            "versions": versions(),
            "loadavg_before": loadavg_before,
            "loadavg_after": tuple(round(x, 2) for x in os.getloadavg()),
            "other_cpu_share_before": round(busy_before, 3),
            "other_cpu_share_during": round(busy_during, 3),
            "warning": warning,
            "total_s": time.perf_counter() - total_started,
            "config": {
                "reader": reader,
                "qabot_reader": str(Path(reader) / qabot_settings_.reader.onnx_file)
                if qabot_settings_.reader.backend == "onnx"
                else f"{reader} (torch)",
                "qabot_summary": (
                    f"embedder {qabot_settings_.embedder.backend}, reader {qabot_settings_.reader.backend} "
                    f"max_seq_length {qabot_settings_.reader.max_seq_length}, dense top_k "
                    f"{qabot_settings_.retrieval.dense_top_k} + BM25 {qabot_settings_.retrieval.bm25_top_k} → "
                    f"{qabot_settings_.retrieval.top_k} passages"
                ),
                "questions": len(questions),
                "answerable": sum(bool(g) for g in golds),
                "unanswerable": sum(not g for g in golds),
                "throughput_questions": throughput_questions,
                "clients": clients,
                "cold_runs": cold_runs,
            },
        }
    )
    report = header(results) + "\n\n" + table(results)
    print(report)
    print(f"\n(total {results['total_s']:.0f} s)", file=sys.stderr)
    out = args.out if args.out is not None else (None if args.quick else BENCH_DIR / "results.json")
    if out:
        results["table_markdown"] = report
        Path(out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reader", help="reader folder (HF layout + onnx/) for both systems; default: config.yaml")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 questions, 1 and 4 clients, 1 cold start")
    parser.add_argument("--questions", type=int, default=None, help="use only this many questions")
    parser.add_argument(
        "--throughput-questions", type=int, default=None, help="questions per throughput run (default: all of them)"
    )
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 4, 16],
        help="comma-separated client counts (default 1,4,16)",
    )
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per system (median reported)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results.json)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per subprocess")
    # internal: the worker subprocesses
    parser.add_argument("--worker", choices=["index", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--system", choices=["qabot", "stock"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
        worker = serve_worker if args.worker == "serve" else index_worker
        args.result.write_text(json.dumps(worker(args.system, spec)), encoding="utf-8")
        return
    main_parent(args)


if __name__ == "__main__":
    main()
