"""Weight interpolation of two readers (training/interpolate_reader.py) on real reader folders on disk."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

PROJECT = Path(__file__).resolve().parents[1]
READER = PROJECT / "models" / "reader"


@pytest.fixture()
def two_readers(tmp_path: Path) -> tuple[Path, Path]:
    """The shipped reader and a copy whose every float weight moved by +1 (a stand-in for a continued run)."""
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(READER / name, tuned / name)
    weights = load_file(READER / "model.safetensors")
    moved = {name: (w.float() + 1 if w.is_floating_point() else w) for name, w in weights.items()}
    save_file(moved, tuned / "model.safetensors")
    return READER, tuned


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.interpolate_reader", *args], cwd=PROJECT, capture_output=True, text=True
    )


def test_blend_is_the_weighted_mean_and_loads_as_a_reader(two_readers, tmp_path):
    base, tuned = two_readers
    out = tmp_path / "blend"
    result = _run(str(base), str(tuned), "--alpha", "0.25", "--out", str(out))
    assert result.returncode == 0, result.stderr
    blended, original = load_file(out / "model.safetensors"), load_file(base / "model.safetensors")
    for name, weight in original.items():
        if weight.is_floating_point():
            assert blended[name].dtype == torch.float32
            assert torch.allclose(blended[name], weight.float() + 0.25, atol=1e-5), name
    assert json.loads((out / "blend.json").read_text())["alpha"] == 0.25
    from transformers import AutoModelForQuestionAnswering

    AutoModelForQuestionAnswering.from_pretrained(out)  # a Hugging Face reader folder, as export_reader expects


def test_mismatched_readers_and_bad_alpha_are_refused(two_readers, tmp_path):
    base, tuned = two_readers
    weights = load_file(tuned / "model.safetensors")
    weights.pop(next(iter(weights)))
    save_file(weights, tuned / "model.safetensors")
    result = _run(str(base), str(tuned), "--alpha", "0.5", "--out", str(tmp_path / "a"))
    assert result.returncode != 0 and "different weights" in result.stderr
    assert not (tmp_path / "a" / "model.safetensors").exists()
    result = _run(str(base), str(base), "--alpha", "1.5", "--out", str(tmp_path / "b"))
    assert result.returncode != 0 and "alpha" in result.stderr
