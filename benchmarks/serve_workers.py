"""Throughput of 1, 2 and 4 ``qabot serve`` workers behind haproxy (``scripts/deploy-local.sh``), on loopback.

    export "$(scripts/dev-postgres.sh start | tail -n 1)"
    .venv/bin/python benchmarks/serve_workers.py                       # pgvector store, 1/2/4 workers
    .venv/bin/python benchmarks/serve_workers.py --backend faiss --workers 1

For each worker count: start the workers and haproxy, send ``--warm-up`` requests, then ``--requests`` POST
/ask requests from ``--concurrency`` client threads (the article questions, round robin), and report requests
per second and latency percentiles; then stop everything. The answer cache is off (``answers.cache_size: 0``)
so every request is really answered. Bounded: at most ``--requests`` requests per worker count, loopback only.

Workers share the machine's cores with each other, haproxy, PostgreSQL and the clients: on a 2-core machine
more workers cannot answer faster than the cores allow; the numbers say how the layout scales on *this*
machine, and are measured under whatever else runs on it (say so when you quote them).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml
from stats import percentile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import load_settings  # noqa: E402
from bot.evaluation import load_questions  # noqa: E402

QUESTIONS = ROOT / "tests" / "data" / "aleppo_questions.json"
DEPLOY = ROOT / "scripts" / "deploy-local.sh"


def write_config(folder: Path, backend: str, schema: str) -> Path:
    settings = load_settings()
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "articles_dir": str(settings.resolve(settings.articles_dir)),
                "index_dir": str(folder / "index"),
                "embedder": {"onnx_dir": str(settings.resolve(settings.embedder.onnx_dir))},
                "reader": {"model": str(settings.resolve(settings.reader.model))},
                "answers": {"cache_size": 0},
                "document_store": {"backend": backend, "pg_schema": schema},
            }
        )
    )
    return config


def run_load(url: str, questions: list[str], requests: int, concurrency: int) -> tuple[float, list[float]]:
    """Wall seconds for ``requests`` requests and each request's latency in ms."""

    def one(n: int) -> float:
        started = time.perf_counter()
        response = client.post(f"{url}/ask", json={"question": questions[n % len(questions)]})
        response.raise_for_status()
        return 1000 * (time.perf_counter() - started)

    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        latencies = list(pool.map(one, range(requests)))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warm-up", type=int, default=8, help="requests per worker before measuring")
    parser.add_argument("--backend", choices=["pgvector", "faiss"], default="pgvector")
    parser.add_argument("--schema", default="qabot_bench", help="pgvector: the schema the benchmark indexes into")
    parser.add_argument("--port", type=int, default=8390, help="haproxy's port; workers use the next ones")
    args = parser.parse_args()
    if args.backend == "pgvector" and not os.environ.get("QABOT_PG_DSN"):
        sys.exit('error: QABOT_PG_DSN is not set: export "$(scripts/dev-postgres.sh start | tail -n 1)"')
    if args.backend == "faiss" and max(args.workers) > 1:
        print("note: with faiss each worker keeps its own conversations; throughput is still comparable")
    questions = [q.question for q in load_questions(QUESTIONS)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="qabot-serve-bench-") as folder:
        config = write_config(Path(folder), args.backend, args.schema)
        env = {**os.environ, "QABOT_CONFIG": str(config), "QABOT_DEPLOY_DIR": f"{folder}/run",
               "QABOT_LB_PORT": str(args.port)}  # fmt: skip
        subprocess.run([sys.executable, "-m", "bot.cli", "index", "--config", str(config)], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip
        for workers in args.workers:
            started = subprocess.run(["bash", str(DEPLOY), "start", str(workers)], env=env, capture_output=True,
                                     text=True)  # fmt: skip
            if started.returncode != 0:
                sys.exit(started.stderr.strip().splitlines()[-1])
            url = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
            try:
                run_load(url, questions, args.warm_up * workers, args.concurrency)
                seconds, latencies = run_load(url, questions, args.requests, args.concurrency)
            finally:
                subprocess.run(["bash", str(DEPLOY), "stop"], env=env, capture_output=True)
            rows.append((workers, args.requests / seconds, percentile(latencies, 50), percentile(latencies, 95)))
            print(f"{workers} worker(s): {rows[-1][1]:.1f} req/s, p50 {rows[-1][2]:.0f} ms, p95 {rows[-1][3]:.0f} ms",
                  flush=True)  # fmt: skip
    print(f"\n{args.backend}, {args.requests} requests, {args.concurrency} clients, cache off, "
          f"{os.cpu_count()} CPUs, {platform.machine()}, {time.strftime('%Y-%m-%d')}\n")  # fmt: skip
    print("| workers | requests/s | p50 ms | p95 ms |\n| --- | --- | --- | --- |")
    for workers, rate, p50, p95 in rows:
        print(f"| {workers} | {rate:.1f} | {p50:.0f} | {p95:.0f} |")


if __name__ == "__main__":
    main()
