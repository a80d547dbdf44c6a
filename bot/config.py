"""Typed settings for qabot: ``config.yaml`` validated by pydantic, plus environment overrides.

Everything else in the package receives a ``Settings`` object and never reads files or the environment
itself, so a bad value fails once, at start-up, with a message that names the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"
PACKAGED_EMBEDDER = "packaged:all-MiniLM-L6-v2"


class ConfigError(ValueError):
    """A missing, unreadable or invalid configuration; the message is meant for the user as is."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChunkingSettings(_Section):
    sentences_per_chunk: int = Field(3, ge=1, le=50)
    overlap_sentences: int = Field(1, ge=0)
    max_chunk_chars: int = Field(800, ge=100, description="A chunk stops growing past this many characters.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap_sentences >= self.sentences_per_chunk:
            raise ValueError("overlap_sentences must be smaller than sentences_per_chunk")
        return self


class EmbedderSettings(_Section):
    backend: Literal["onnx", "torch"] = "onnx"
    onnx_dir: str = Field("models/embedder", description="int8 ONNX export of the packaged MiniLM (onnx backend).")
    model: str = Field(PACKAGED_EMBEDDER, description="torch backend: a local path, a hub id, or the packaged MiniLM.")
    batch_size: int = Field(32, ge=1)


class RetrievalSettings(_Section):
    dense_top_k: int = Field(4, ge=1, le=100)
    bm25_top_k: int = Field(4, ge=0, le=100, description="0 switches BM25 off.")
    top_k: int = Field(4, ge=1, le=100, description="Passages handed to the reader after fusion.")
    dense_only_top: int | None = Field(
        None, ge=0, le=100, description="Read a passage only FAISS found if in FAISS's top N (null: always)."
    )


class ReaderSettings(_Section):
    model: str = Field("models/reader", description="A local folder (HF layout) or a hub id.")
    backend: Literal["onnx", "torch"] = "onnx"
    onnx_file: str = Field("onnx/model_int8.onnx", description="Relative to the model folder.")
    max_seq_length: int = Field(256, ge=32, le=512)
    stride: int = Field(96, ge=0)
    calibration_factor: float | None = Field(
        None, gt=0, description="Platt scaling: confidence = sigmoid(factor*m + bias); null: the model's metrics.json"
    )
    calibration_bias: float | None = Field(None, description="null: the model folder's metrics.json")
    null_relative_scores: bool = Field(True, description="Score spans against the model's learned null.")
    no_answer_threshold: float | None = Field(
        None, ge=0, le=1, description="Abstain below this confidence; null: the verifier's fitted one (0.5 without)."
    )
    verifier: str | None = Field(
        "verifier.json", description="Answer verifier beside the reader (bot.verifier); null: the reader's score only."
    )
    max_answer_chars: int = Field(200, ge=1)

    @model_validator(mode="after")
    def _stride_below_window(self) -> ReaderSettings:
        if self.stride >= self.max_seq_length:
            raise ValueError("stride must be smaller than max_seq_length")
        return self


class AnswerSettings(_Section):
    alternatives: int = Field(3, ge=0, le=20)
    cache_size: int = Field(512, ge=0, description="Answers kept for repeated questions; 0 disables.")
    max_question_chars: int = Field(1000, ge=1)


class TelegramSettings(_Section):
    base_url: str = "https://api.telegram.org/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(8443, ge=1, le=65535)
    concurrent_updates: int = Field(16, ge=1)
    workers: int = Field(2, ge=1, description="Threads that run inference off the event loop.")
    batch_window_ms: int = Field(10, ge=0, description="Questions arriving this close together share a batch.")
    max_retries: int = Field(3, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value


class Settings(_Section):
    articles_dir: Path = Path("data/articles")
    index_dir: Path = Path("index")
    chunking: ChunkingSettings = ChunkingSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    reader: ReaderSettings = ReaderSettings()
    answers: AnswerSettings = AnswerSettings()
    telegram: TelegramSettings = TelegramSettings()

    def resolve(self, path: Path | str) -> Path:
        """Relative paths in the config are relative to the project root, not the working directory."""
        path = Path(path)
        return path if path.is_absolute() else PROJECT_ROOT / path


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the config file, then apply environment overrides (``TELEGRAM_BASE_URL``)."""
    environ = dict(os.environ) if environ is None else environ
    path = Path(environ.get("QABOT_CONFIG", DEFAULT_CONFIG_PATH)) if path is None else path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of sections, not {type(raw).__name__}")
    if base_url := environ.get("TELEGRAM_BASE_URL"):
        raw = {**raw, "telegram": {**(raw.get("telegram") or {}), "base_url": base_url}}
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or '(root)'}: {issue['msg']}" for issue in error.errors()
        )
        raise ConfigError(f"invalid config {path}: {problems}") from error
