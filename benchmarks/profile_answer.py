"""Where the time of one warm ``QAService.answer()`` goes: stage timers, then a cProfile listing.

    .venv/bin/python benchmarks/profile_answer.py                  # 20 warm questions, config.yaml as shipped
    .venv/bin/python benchmarks/profile_answer.py --reader /tmp/reader_test --questions 40

1. Stage timers (no profiler attached, so no profiler overhead): wrappers around the components of the
   retrieval pipeline, the reader, and the native calls inside the ONNX components (tokenizer ``encode_batch``,
   ONNX Runtime ``session.run``) and the reader's span post-processing. Haystack overhead = the retrieval
   ``Pipeline.run`` time minus its components; "QAService rest" = ``answer()`` minus retrieval and reader.
2. cProfile over the same questions: the top functions by own time (profiling inflates Python-heavy code).

The answer cache is off (``answers.cache_size = 0``) and the index is built into a temporary folder.
Works with the reader inside or outside the Haystack pipeline; stages it cannot find are left out.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(PROJECT_ROOT)]

TIMES: dict[str, list[float]] = defaultdict(list)
SHAPES: list[tuple[int, ...]] = []


def timed(name: str, function, record_shape: bool = False):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        begin = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            TIMES[name].append(time.perf_counter() - begin)
            if record_shape and len(args) > 1 and isinstance(args[1], dict) and "input_ids" in args[1]:
                SHAPES.append(tuple(args[1]["input_ids"].shape))

    return wrapper


class Proxy:
    """Forwards everything to a native object (ORT session, tokenizer), timing the named methods."""

    def __init__(self, target, prefix: str, methods: tuple[str, ...], record_shape: bool = False) -> None:
        self._target = target
        for method in methods:
            setattr(self, method, timed(f"{prefix}.{method}", getattr(target, method), record_shape))

    def __getattr__(self, name: str):
        return getattr(self._target, name)


def instrument(service) -> tuple[list[str], str | None]:
    """Wrap what can be found; returns the retrieval component names and the reader's stage name."""
    query = service._pipeline
    retrieval = getattr(query, "retrieval", query)  # QueryPipeline (reader outside) or a bare Pipeline
    reader = getattr(query, "reader", None)
    retrieval.run = timed("retrieval Pipeline.run", retrieval.run)
    names = []
    for name in list(retrieval.graph.nodes):
        instance = retrieval.get_component(name)
        if reader is None and name == "reader":
            reader = instance
            continue
        instance.run = timed(f"component {name}", instance.run)
        names.append(name)
        encoder = getattr(instance, "_encoder", None)
        if encoder is not None and hasattr(encoder, "session"):
            encoder.tokenizer = Proxy(encoder.tokenizer, f"{name} tokenizer", ("encode_batch",))
            encoder.session = Proxy(encoder.session, f"{name} onnxruntime", ("run",))
    reader_stage = None
    if reader is not None:
        for method in ("run_batch", "run"):
            if hasattr(reader, method):
                reader_stage = f"reader.{method}"
                setattr(reader, method, timed(reader_stage, getattr(reader, method)))
                break
        if getattr(reader, "_session", None) is not None:
            reader._session = Proxy(reader._session, "reader onnxruntime", ("run",), record_shape=True)
            reader._tokenizer = Proxy(reader._tokenizer, "reader tokenizer", ("encode_batch",))
            reader._window_answers = timed("reader span post-processing", reader._window_answers)
    if hasattr(service, "_to_answer"):
        service._to_answer = timed("QAService._to_answer", service._to_answer)
    return names, reader_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", help="reader folder (default: config.yaml's reader.model)")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--top", type=int, default=25, help="cProfile rows to print")
    args = parser.parse_args()

    import run_benchmark

    from bot.answering import QAService
    from bot.config import load_settings
    from bot.indexing import build_index
    from bot.models import reader_model

    base = load_settings()
    reader = str(Path(args.reader).resolve()) if args.reader else reader_model(base)
    index_dir = tempfile.mkdtemp(prefix="qabot-profile-")
    settings = run_benchmark.qabot_settings({"reader": reader, "qabot_index_dir": index_dir}, cache_size=0)
    build_index(settings, force=True, progress_bar=False)
    service = QAService.from_settings(settings)
    questions, _ = run_benchmark.load_questions(None)
    questions = questions[: args.questions]
    service.answer(run_benchmark.WARM_UP_QUESTION)

    # 1. wall clock with nothing attached
    plain = []
    for question in questions:
        begin = time.perf_counter()
        service.answer(question)
        plain.append(time.perf_counter() - begin)

    # 2. stage timers
    retrieval_names, reader_stage = instrument(service)
    service.answer(run_benchmark.WARM_UP_QUESTION)
    TIMES.clear()
    SHAPES.clear()
    totals = []
    for question in questions:
        begin = time.perf_counter()
        service.answer(question)
        totals.append(time.perf_counter() - begin)

    n = len(questions)
    total_ms = 1000 * sum(totals) / n

    def ms(name: str) -> float:
        return 1000 * sum(TIMES.get(name, [])) / n

    rows: list[tuple[str, float]] = [("answer() total", total_ms)]
    pipeline_ms = ms("retrieval Pipeline.run")
    rows.append(("retrieval Pipeline.run (Haystack)", pipeline_ms))
    for name in retrieval_names:
        rows.append((f"  {name}", ms(f"component {name}")))
        if TIMES.get(f"{name} onnxruntime.run"):
            tok, ort = ms(f"{name} tokenizer.encode_batch"), ms(f"{name} onnxruntime.run")
            rows.append(("    tokenizer", tok))
            rows.append(("    onnxruntime run", ort))
            rows.append(("    rest (feeds, mean pooling, tolist)", ms(f"component {name}") - tok - ort))
    rows.append(("  Haystack pipeline overhead", pipeline_ms - sum(ms(f"component {x}") for x in retrieval_names)))
    if reader_stage:
        reader_ms = ms(reader_stage)
        rows.append((f"{reader_stage}", reader_ms))
        parts = 0.0
        for label, key in (
            ("  tokenizer (question + passages, windows)", "reader tokenizer.encode_batch"),
            ("  onnxruntime run", "reader onnxruntime.run"),
            ("  span post-processing (_window_answers)", "reader span post-processing"),
        ):
            if key in TIMES:
                rows.append((label, ms(key)))
                parts += ms(key)
        if parts:
            rows.append(("  rest (padding, feeds, sort)", reader_ms - parts))
    else:
        reader_ms = 0.0
    rows.append(("QAService._to_answer (dedupe, alternatives)", ms("QAService._to_answer")))
    rows.append(
        (
            "QAService rest (validate, lock, index check)",
            total_ms - pipeline_ms - reader_ms - ms("QAService._to_answer"),
        )
    )

    print(f"qabot answer(): {n} warm questions, reader {reader}")
    print(
        f"unprofiled wall clock per question: mean {1000 * statistics.fmean(plain):.1f} ms, "
        f"p50 {1000 * statistics.median(plain):.1f} ms; with stage timers: mean {total_ms:.1f} ms"
    )
    if SHAPES:
        windows = statistics.fmean(s[0] for s in SHAPES)
        width = statistics.fmean(s[1] for s in SHAPES)
        print(f"reader batch per question: {windows:.1f} windows × {width:.0f} tokens (padded) on average")
    print()
    print("| stage | ms / question | % of answer() |")
    print("|---|---:|---:|")
    for label, value in rows:
        print(
            f"| {label.replace(' ', '&nbsp;', len(label) - len(label.lstrip()))} | {value:.1f} | "
            f"{100 * value / total_ms:.0f}% |"
        )

    # 3. cProfile
    profiler = cProfile.Profile()
    profiler.enable()
    for question in questions:
        service.answer(question)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("tottime")
    stats.print_stats(args.top)
    print("\ncProfile, top functions by own time (all questions together):")
    print("\n".join(line for line in stream.getvalue().splitlines() if line.strip())[:6000])


if __name__ == "__main__":
    main()
