"""config.yaml validation and environment overrides."""

from pathlib import Path

import pytest

from bot.config import DEFAULT_CONFIG_PATH, ConfigError, IngestSettings, Settings, load_settings, with_overrides


def test_shipped_config_matches_defaults():
    assert load_settings(DEFAULT_CONFIG_PATH, environ={}) == Settings()


def test_named_config_file_must_exist(tmp_path: Path):
    """A typo in --config or QABOT_CONFIG is an error, not a silent fall-back to the defaults."""
    with pytest.raises(ConfigError, match=r"absent\.yaml does not exist"):
        load_settings(tmp_path / "absent.yaml", environ={})
    with pytest.raises(ConfigError, match=r"absent\.yaml does not exist"):
        load_settings(environ={"QABOT_CONFIG": str(tmp_path / "absent.yaml")})
    with pytest.raises(ConfigError, match="not a file"):
        load_settings(tmp_path, environ={})


def test_relative_paths_are_relative_to_the_config_files_folder(tmp_path: Path):
    """As config.yaml says; keys the file does not set keep their defaults (relative to the project root)."""
    from bot.config import PROJECT_ROOT

    (tmp_path / "my-reader").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        "index_dir: idx\narticles_dir: ../news\nreader: {model: my-reader}\n"
        "embedder: {model: sentence-transformers/all-MiniLM-L6-v2}\n"
    )
    settings = load_settings(path, environ={})
    assert settings.resolve(settings.index_dir) == tmp_path / "idx"
    assert settings.resolve(settings.articles_dir) == tmp_path.parent / "news"
    assert settings.resolve(settings.reader.model) == tmp_path / "my-reader"
    assert settings.embedder.model == "sentence-transformers/all-MiniLM-L6-v2"  # a hub id stays a hub id
    assert settings.resolve(settings.embedder.onnx_dir) == PROJECT_ROOT / "models" / "embedder"  # a default
    shipped = load_settings(DEFAULT_CONFIG_PATH, environ={})
    assert shipped.resolve(shipped.index_dir) == PROJECT_ROOT / "index"


def test_duplicate_keys_are_refused(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("reader:\n  no_answer_threshold: 0.5\n  no_answer_threshold: 0.9\n")
    with pytest.raises(ConfigError, match="duplicate key 'no_answer_threshold' at line 3"):
        load_settings(path, environ={})


def test_yaml_errors_are_one_line(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("reader:\n  model: [unclosed\nindex_dir: x\n")
    with pytest.raises(ConfigError, match="line 3") as raised:
        load_settings(path, environ={})
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("reader: {backend: gpu}", "reader.backend"),
        ("retrieval: {top_k: 0}", "retrieval.top_k"),
        ("chunking: {sentences_per_chunk: 2, overlap_sentences: 2}", "overlap_sentences must be smaller"),
        ("telegram: {base_url: ftp://x}", "telegram.base_url"),
        ("telegram: {mode: webhook}", "webhook_url is not set"),
        ("unknown_section: 1", "unknown_section"),
        ("- a list", "must be a mapping"),
        ("reader: [unclosed", "cannot read config"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, yaml_text: str, message: str):
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ={})


def test_environment_overrides_base_url(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("telegram: {mode: polling}")
    settings = load_settings(path, environ={"TELEGRAM_BASE_URL": "http://127.0.0.1:9000/bot"})
    assert settings.telegram.base_url == "http://127.0.0.1:9000/bot"


def test_serve_url_from_the_environment_makes_the_bot_forward(tmp_path: Path):
    """QABOT_SERVE_URL sets telegram.answer_url (a deploy script points the bot at its load balancer)."""
    path = tmp_path / "config.yaml"
    path.write_text("telegram: {answer_url: 'http://10.0.0.1:8000'}")
    assert load_settings(path, environ={}).telegram.answer_url == "http://10.0.0.1:8000"
    settings = load_settings(path, environ={"QABOT_SERVE_URL": "http://127.0.0.1:8380/"})
    assert settings.telegram.answer_url == "http://127.0.0.1:8380"  # one form: no trailing slash
    path.write_text("telegram: {answer_url: 'localhost:8000'}")
    with pytest.raises(ConfigError, match=r"telegram\.answer_url: .*answer_url must start with http"):
        load_settings(path, environ={})


def test_overrides_replace_nested_keys_by_dotted_path(tmp_path: Path):
    shipped = load_settings(DEFAULT_CONFIG_PATH, environ={})
    overrides = {"reader.no_answer_threshold": 0.3, "reader.stride": 64, "answers.cache_size": 0, "index_dir": tmp_path}
    changed = with_overrides(shipped, overrides)
    assert (changed.reader.no_answer_threshold, changed.reader.stride) == (0.3, 64)
    assert changed.answers.cache_size == 0 and changed.index_dir == tmp_path
    assert changed.reader.model == shipped.reader.model  # the rest of the section is kept
    assert changed.answers.alternatives == shipped.answers.alternatives
    assert with_overrides(IngestSettings(), {"max_bytes": 100_000}).max_bytes == 100_000  # one section works too


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reader.treshold": 0.3}, r"reader\.treshold: unknown setting"),
        ({"readers.model": "x"}, r"readers\.model: readers is an unknown section"),
        ({"index_dir.name": "x"}, r"index_dir\.name: index_dir is not a section"),
        ({"answers.cache_size": -1}, r"answers\.cache_size: Input should be greater than or equal to 0"),
        ({"answers.cache_size": "many"}, r"answers\.cache_size: Input should be a valid integer"),
        ({"reader.stride": 300}, r"reader: .*stride must be smaller than max_seq_length"),
        ({"ingest": IngestSettings().model_copy(update={"max_bytes": 1})}, r"ingest\.max_bytes: .*greater than"),
    ],
)
def test_bad_overrides_are_refused_and_change_nothing(overrides: dict, message: str):
    """model_copy(update=...) would take every one of these silently; the settings would then be ones no
    config.yaml could hold."""
    shipped = load_settings(DEFAULT_CONFIG_PATH, environ={})
    before = shipped.model_dump()
    with pytest.raises(ConfigError, match=f"^invalid settings override: {message}"):
        with_overrides(shipped, overrides)
    assert shipped.model_dump() == before


def test_qabot_config_variable_selects_file(tmp_path: Path):
    path = tmp_path / "other.yaml"
    path.write_text("answers: {alternatives: 0}")
    assert load_settings(environ={"QABOT_CONFIG": str(path)}).answers.alternatives == 0


def test_reader_calibration_comes_from_the_model_folder_unless_configured(tmp_path: Path):
    """config.yaml leaves calibration null: the numbers are the fit that evaluate_reader wrote beside the weights."""
    import json

    from bot.config import PROJECT_ROOT
    from bot.errors import ModelLoadError
    from bot.models import UNCALIBRATED, reader_calibration

    fitted = json.loads((PROJECT_ROOT / "models" / "reader" / "metrics.json").read_text())["calibration"]
    shipped = load_settings(DEFAULT_CONFIG_PATH, environ={})
    assert reader_calibration(shipped) == (fitted["factor"], fitted["bias"])

    def with_reader(**reader) -> Settings:
        return with_overrides(shipped, {f"reader.{key}": value for key, value in reader.items()})

    assert reader_calibration(with_reader(calibration_factor=0.3)) == (0.3, fitted["bias"])
    assert reader_calibration(with_reader(calibration_factor=0.3, calibration_bias=-1.0)) == (0.3, -1.0)
    assert reader_calibration(with_reader(model=str(tmp_path))) == UNCALIBRATED
    (tmp_path / "metrics.json").write_text('{"f1": 70}')
    with pytest.raises(ModelLoadError, match="calibration"):
        reader_calibration(with_reader(model=str(tmp_path)))
