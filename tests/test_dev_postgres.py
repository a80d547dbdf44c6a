"""``scripts/dev-postgres.sh`` on this machine: start, idempotent restart, status, stop, in a folder of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "dev-postgres.sh"


def _script(command: str, folder: Path) -> subprocess.CompletedProcess:
    environ = {**os.environ, "QABOT_PG_DIR": str(folder)}
    return subprocess.run(["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=900, env=environ)


@pytest.fixture
def pg_folder() -> Iterator[Path]:
    # Under /tmp, not pytest's tmp_path: the postgres user must be able to reach it (pytest's is root-only).
    folder = Path(tempfile.mkdtemp(prefix="qabot-pg-test-", dir="/tmp"))
    yield folder
    _script("stop", folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_start_is_idempotent_and_prints_a_working_dsn_last(pg_folder: Path):
    first = _script("start", pg_folder)
    if first.returncode != 0:
        pytest.skip(f"PostgreSQL with pgvector cannot be had here: {first.stderr.strip().splitlines()[-1:]}")
    key, _, dsn = first.stdout.strip().splitlines()[-1].partition("=")
    assert key == "QABOT_PG_DSN" and dsn.startswith("postgresql://qabot:")
    with psycopg.connect(dsn) as connection:
        assert connection.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone() == (1.0,)
        assert connection.execute("SELECT inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)
    assert (pg_folder / "data" / "PG_VERSION").exists()  # the data lives outside the repository

    again = _script("start", pg_folder)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == f"QABOT_PG_DSN={dsn}"
    status = _script("status", pg_folder)
    assert status.returncode == 0 and status.stdout.strip() == f"QABOT_PG_DSN={dsn}"

    stopped = _script("stop", pg_folder)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert _script("status", pg_folder).returncode == 3
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=5)


def test_unknown_command_is_usage(pg_folder: Path):
    result = _script("restart", pg_folder)
    assert result.returncode == 2 and result.stderr.startswith("usage:")
