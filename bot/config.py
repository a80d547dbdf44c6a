"""Typed settings for qabot: ``config.yaml`` validated by pydantic, plus environment overrides.

Everything else in the package receives a ``Settings`` object and never reads files or the environment
itself, so a bad value fails once, at start-up, with a message that names the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

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


class IndexSettings(_Section):
    """How builds are stored and written (``index:`` in config.yaml)."""

    faiss_index: Literal["auto", "flat", "hnsw"] = Field(
        "auto", description="auto: exact Flat search up to hnsw_above_chunks chunks, HNSW graph search above."
    )
    hnsw_above_chunks: int = Field(50_000, ge=0)
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW neighbours per node (memory vs recall).")
    hnsw_ef_construction: int = Field(80, ge=8, le=1024)
    hnsw_ef_search: int = Field(64, ge=1, le=4096, description="HNSW candidates per search (speed vs recall).")
    lock_timeout_s: float = Field(120, ge=0, description="How long a second index writer waits for the first.")


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
    feedback_file: Path = Field(Path("feedback/votes.jsonl"), description="Append-only JSON lines of 👍/👎 votes.")
    conversation_idle_minutes: float = Field(30, gt=0, description="A chat's context is forgotten after this.")
    admin_user_ids: tuple[int, ...] = Field((), description="Telegram user ids that may add shared articles.")
    user_articles: Literal["off", "per_chat"] = Field("off", description="per_chat: anyone adds chat-only articles.")
    chat_max_articles: int = Field(5, ge=0, description="per_chat quota: articles one chat may add.")
    chat_max_chars: int = Field(300_000, ge=0, description="per_chat quota: total article characters per chat.")
    answer_url: str | None = Field(
        None,
        description="A `qabot serve` URL (one worker or the load balancer): the bot forwards each question to its "
        "POST /ask instead of loading the models itself (env QABOT_SERVE_URL).",
    )
    answer_timeout_s: float = Field(30.0, gt=0, le=600, description="answer_url: longest wait for one answer.")
    answer_retries: int = Field(2, ge=0, le=10, description="answer_url: retries on connection errors, 502, 503.")

    @field_validator("user_articles", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads an unquoted `off` as false

    @model_validator(mode="after")
    def _webhook_has_url(self) -> TelegramSettings:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError("mode is webhook but webhook_url is not set")
        return self

    @field_validator("base_url", "answer_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{info.field_name} must start with http:// or https://")
        return value

    @field_validator("answer_url")
    @classmethod
    def _without_trailing_slash(cls, value: str | None) -> str | None:
        """One form, so ``{answer_url}/ask`` never has a double slash (base_url keeps its own: the token follows).

        The only place the slash is stripped: ``ServeClient`` and ``qabot telegram``'s log line use the value as is.
        """
        return value.rstrip("/") if value is not None else value


class IngestSettings(_Section):
    """Fetching and extracting articles from URLs and files (bot/ingest/)."""

    allow_private_urls: bool = Field(False, description="Fetch loopback/private/link-local addresses (tests only).")
    max_bytes: int = Field(5_000_000, ge=1_000, description="Largest page, PDF or file accepted.")
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(15.0, gt=0, description="Longest wait for the next bytes.")
    total_timeout_s: float = Field(30.0, gt=0, description="Longest whole download, redirects included.")
    max_redirects: int = Field(5, ge=0, le=20)
    user_agent: str = Field("qabot/0.1 (news article question answering; fetches one page per request)", min_length=1)
    min_words: int = Field(50, ge=1, description="Less extracted text than this is not an article.")


class DocumentStoreSettings(_Section):
    """Where the chunks live (``document_store:`` in config.yaml); chosen in one place, ``bot.stores``."""

    backend: Literal["faiss", "pgvector"] = Field(
        "faiss", description="faiss: an index folder per process; pgvector: PostgreSQL shared by many workers."
    )
    pg_schema: str = Field(
        "public", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="pgvector: the PostgreSQL schema of the tables."
    )
    create: bool = Field(True, description="pgvector: create missing tables; false on a read replica.")
    conversation_table: str = Field(
        "qabot_conversations", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="pgvector: conversation state."
    )


class Settings(_Section):
    articles_dir: Path = Path("data/articles")
    index_dir: Path = Path("index")
    index: IndexSettings = IndexSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    reader: ReaderSettings = ReaderSettings()
    answers: AnswerSettings = AnswerSettings()
    telegram: TelegramSettings = TelegramSettings()
    ingest: IngestSettings = IngestSettings()
    document_store: DocumentStoreSettings = DocumentStoreSettings()

    @staticmethod
    def resolve(path: Path | str) -> Path:
        """A path from the settings as an absolute path (static: the Telegram bot in front of workers has only
        its ``TelegramSettings``).

        ``load_settings`` has already made the paths written in a config file absolute (relative to that
        file's folder), so what is still relative here is a default: relative to the project root, never to
        the working directory.
        """
        path = Path(path)
        return path if path.is_absolute() else PROJECT_ROOT / path


# Keys that name a folder or file: a relative value in a config file is relative to that file's folder.
_PATH_KEYS = (("articles_dir",), ("index_dir",), ("embedder", "onnx_dir"))
# Keys that name a local folder or a hub id ("deepset/roberta-base-squad2"): made absolute only when the
# folder exists next to the config file, so a hub id stays a hub id.
_MODEL_KEYS = (("embedder", "model"), ("reader", "model"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error instead of last-wins."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _one_line(error: yaml.YAMLError) -> str:
    """PyYAML's 5-line report (context, snippet, caret) as one line: what is wrong and where."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{error.problem or error.context}{where}"
    return " ".join(str(error).split())


def _relative_to_file(raw: dict, folder: Path) -> dict:
    """``raw`` with the relative paths it names made absolute against the config file's folder."""
    if folder.resolve() == PROJECT_ROOT:
        return raw  # the project's own config: defaults and values share one base, keep them relative
    raw = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    for keys in (*_PATH_KEYS, *_MODEL_KEYS):
        *sections, name = keys
        holder = raw
        for section in sections:
            holder = holder.get(section) if isinstance(holder.get(section), dict) else {}
        value = holder.get(name)
        if not isinstance(value, str) or Path(value).expanduser().is_absolute():
            continue
        local = (folder / value).resolve()
        if keys in _PATH_KEYS or local.exists():
            holder[name] = str(local)
    return raw


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the config file, then apply environment overrides (``TELEGRAM_ENV_OVERRIDES``).

    The project's ``config.yaml`` is optional (every key has a default); a file named by ``path`` or
    ``QABOT_CONFIG`` must exist, so a typo in its name is an error rather than a silent fall-back to defaults.
    """
    environ = dict(os.environ) if environ is None else environ
    if path is None and environ.get("QABOT_CONFIG"):
        path = Path(environ["QABOT_CONFIG"])
    if path is None:
        path = DEFAULT_CONFIG_PATH
        if not path.exists():
            return _validated({}, path, environ)
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" if not path.exists() else f"config {path} is not a file")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"cannot read config {path}: not UTF-8 text (byte {error.start})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"cannot read config {path}: {_one_line(error)}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of sections, not {type(raw).__name__}")
    return _validated(_relative_to_file(raw, path.parent), path, environ)


# Environment variables that override a telegram key (a deployment script points the bot at its workers and
# at a Bot API server without writing a config file).
TELEGRAM_ENV_OVERRIDES = {"TELEGRAM_BASE_URL": "base_url", "QABOT_SERVE_URL": "answer_url"}

SettingsModel = TypeVar("SettingsModel", bound=_Section)


def with_overrides(settings: SettingsModel, overrides: Mapping[str, object]) -> SettingsModel:
    """A copy of ``settings`` (``Settings`` or one section) with the keys named by dotted paths replaced.

    ``with_overrides(settings, {"reader.no_answer_threshold": 0.3, "answers.cache_size": 0, "index_dir": path})``.
    This is the rule ``load_settings`` applies to environment overrides: merge into the plain dict, then rebuild
    through ``model_validate``. Not ``model_copy(update=...)``, because pydantic does not validate that: a
    misspelt key or a value config.yaml would refuse (cache_size -1, stride above the window) would slip
    through silently. A value that is itself a settings model is re-validated too. Raises ``ConfigError``
    naming the key; ``settings`` (frozen) is never changed.
    """
    context = "invalid settings override"
    return _validate(type(settings), _merged(type(settings), settings.model_dump(), overrides, context), context)


def _merged(model: type[BaseModel], raw: dict, overrides: Mapping[str, object], context: str) -> dict:
    """``raw`` (a dict ``model`` will validate) with ``overrides`` put in at their dotted paths; ``raw`` is not changed.

    Each path is checked against ``model``'s fields first, so a misspelt section or key is named as such rather
    than reported as an extra input somewhere else; ``context`` starts the error line.
    """
    raw = dict(raw)
    for path, value in overrides.items():
        *sections, name = path.split(".")
        holder, fields = raw, model.model_fields
        for depth, section in enumerate(sections):
            annotation = fields[section].annotation if section in fields else None
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                where = ".".join(sections[: depth + 1])
                problem = "an unknown section" if annotation is None else "not a section"
                raise ConfigError(f"{context}: {path}: {where} is {problem}")
            inner = holder.get(section)
            if isinstance(inner, BaseModel):
                inner = inner.model_dump()
            if inner is None:
                inner = {}  # `telegram:` left empty in a config file
            if not isinstance(inner, dict):
                break  # not a mapping in the config file: validation names that key
            holder[section] = holder = dict(inner)
            fields = annotation.model_fields
        else:
            if name not in fields:
                raise ConfigError(f"{context}: {path}: unknown setting")
            holder[name] = value.model_dump() if isinstance(value, BaseModel) else value
    return raw


def _validate(model: type[SettingsModel], raw: dict, context: str) -> SettingsModel:
    """``model`` built from ``raw``, or one ``ConfigError`` line that names every bad key."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or '(root)'}: {issue['msg']}" for issue in error.errors()
        )
        raise ConfigError(f"{context}: {problems}") from error


def _validated(raw: dict, path: Path, environ: dict[str, str]) -> Settings:
    overrides = {
        f"telegram.{key}": value
        for variable, key in TELEGRAM_ENV_OVERRIDES.items()
        if (value := environ.get(variable, "").strip())
    }
    context = f"invalid config {path}"
    return _validate(Settings, _merged(Settings, raw, overrides, context), context)
