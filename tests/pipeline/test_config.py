"""Settings: packaged defaults, a config file, then MNEMO_ environment overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mnemoflow.pipeline.api.config import Settings, default_config_path, load_settings
from mnemoflow.pipeline.api.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_defaults_match_the_typed_defaults() -> None:
    """configs/default.toml and the models agree, so neither drifts from the other."""
    doc = tomllib.loads((ROOT / "configs" / "default.toml").read_text())
    assert Settings.model_validate(doc) == Settings()
    assert default_config_path().read_text() == (ROOT / "configs" / "default.toml").read_text()


def test_home_defaults_to_dot_mnemo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings(environ={}).home == tmp_path / ".mnemo"


def test_home_from_environment_then_argument(tmp_path: Path) -> None:
    env = {"MNEMO_HOME": str(tmp_path / "env")}
    assert load_settings(environ=env).home == tmp_path / "env"
    assert load_settings(home=tmp_path / "arg", environ=env).home == tmp_path / "arg"


def test_environment_overrides_one_key() -> None:
    settings = load_settings(
        environ={"MNEMO_LOG__SEGMENT_BYTES": "1048576", "MNEMO_LOGGING__LEVEL": "debug"}
    )
    assert settings.log.segment_bytes == 1048576
    assert settings.logging.level == "debug"
    assert settings.log.max_text_bytes == 65536


def test_config_file_is_laid_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[log]\nmax_text_bytes = 1000\n")
    assert load_settings(config_file=path, environ={}).log.max_text_bytes == 1000
    assert load_settings(environ={"MNEMO_CONFIG": str(path)}).log.max_text_bytes == 1000


def test_one_key_of_a_table_keeps_the_others(tmp_path: Path) -> None:
    """A file or the environment that sets one channel's weight leaves the other channels at
    their defaults (the merge was one level deep: `[query.weights] lexical = 2` dropped the
    rest, and recall fused one channel)."""
    defaults = Settings().query.weights
    path = tmp_path / "mine.toml"
    path.write_text("[query.weights]\nlexical = 2.0\n")
    from_file = load_settings(config_file=path, environ={}).query.weights
    assert from_file == {**defaults, "lexical": 2.0}
    from_env = load_settings(environ={"MNEMO_QUERY__WEIGHTS__LEXICAL": "2"}).query.weights
    assert from_env == {**defaults, "lexical": 2.0}
    both = load_settings(
        config_file=path, environ={"MNEMO_QUERY__WEIGHTS__GRAPH": "0.5"}
    ).query.weights
    assert both == {**defaults, "lexical": 2.0, "graph": 0.5}


def test_environment_values_can_be_tables() -> None:
    """A table in the environment, written as a TOML inline table, is laid over the default
    table key by key; a malformed one is named."""
    weights = load_settings(
        environ={"MNEMO_QUERY__WEIGHTS": "{ entity = 0.5, graph = 0.0 }"}
    ).query.weights
    assert weights == {**Settings().query.weights, "entity": 0.5, "graph": 0.0}
    with pytest.raises(ConfigError, match="MNEMO_QUERY__WEIGHTS"):
        load_settings(environ={"MNEMO_QUERY__WEIGHTS": "{ entity = "})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MNEMO_LOG__SEGMENT_BYTES": "lots"}, "log.segment_bytes"),
        ({"MNEMO_LOG__SEGMENT_BYTES": "10"}, "log.segment_bytes"),
        ({"MNEMO_NOPE__X": "1"}, "no \\[nope\\] section"),
        ({"MNEMO_LOG__NO_SUCH_KEY": "1"}, "log.no_such_key"),
        ({"MNEMO_LOGGING__LEVEL": "loud"}, "logging.level"),
    ],
)
def test_bad_settings_name_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_unreadable_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[log\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(config_file=path, environ={})
