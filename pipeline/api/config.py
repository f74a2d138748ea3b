"""Typed settings, loaded once: packaged defaults, then a config file, then the environment.

Each component has its own section. An environment variable ``MNEMO_<SECTION>__<KEY>``
overrides one key (``MNEMO_QUERY__WEIGHTS__LEXICAL`` one key of a table, and a value written
as a TOML inline table is a table); files and variables are merged table by table, so setting
one key keeps its neighbours. ``MNEMO_HOME`` (or ``--home``) is the data directory;
``MNEMO_CONFIG`` names a TOML file laid over the defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from mnemoflow.actors.consolidator import ConsolidatorSettings
from mnemoflow.actors.decay import DecaySettings
from mnemoflow.actors.embedder import EmbedderSettings
from mnemoflow.actors.linker import LinkerSettings
from mnemoflow.actors.llm import LLMSettings
from mnemoflow.actors.patterns import PatternSettings
from mnemoflow.actors.query.settings import QuerySettings
from mnemoflow.eventlog.settings import LogSettings
from mnemoflow.pipeline.api.errors import ConfigError
from mnemoflow.pipeline.api.server_settings import ServerSettings
from mnemoflow.projections.lexical import BM25Settings
from mnemoflow.projections.vector_settings import VectorSettings

ENV_PREFIX = "MNEMO_"


class PathSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    home: str = "~/.mnemo"


class LoggingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # None: info, but warning for the CLI's one-shot commands (`mnemo recall`, `mnemo store`)
    level: Literal["debug", "info", "warning", "error"] | None = None
    format: Literal["auto", "json", "console"] = "auto"


class ProjectionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    batch_size: int = Field(5000, ge=1, description="events per projection transaction")
    actor_batch_size: int = Field(256, ge=1, description="upstream events per actor step")
    aside_above: int = Field(
        50_000,
        ge=0,
        description="fold the actors' streams but the embedder's in a "
        "child process when none is folded yet and they hold this many events (0: never)",
    )


class RaySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    worker_processes: Literal["one", "per_lane"] = Field(
        "one",
        description="the service's actors in one Ray worker process, or one per lane: a "
        "worker costs ~200 MB before it does anything, and the lanes run on threads anyway",
    )


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    paths: PathSettings = Field(default_factory=PathSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    linker: LinkerSettings = Field(default_factory=LinkerSettings)
    consolidator: ConsolidatorSettings = Field(default_factory=ConsolidatorSettings)
    decay: DecaySettings = Field(default_factory=DecaySettings)
    patterns: PatternSettings = Field(default_factory=PatternSettings)
    lexical: BM25Settings = Field(default_factory=BM25Settings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    projections: ProjectionSettings = Field(default_factory=ProjectionSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    ray: RaySettings = Field(default_factory=RaySettings)

    @property
    def home(self) -> Path:
        return Path(self.paths.home).expanduser().resolve()


def default_config_path() -> Path:
    """The shipped defaults: the `mnemoflow.configs` package (`configs/` in a checkout)."""
    candidate = Path(str(resources.files("mnemoflow.configs").joinpath("default.toml")))
    if candidate.is_file():
        return candidate
    raise ConfigError("configs/default.toml is missing from the installation")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def _merge(base: dict[str, Any], over: Mapping[str, Any], origin: str) -> None:
    """Lay `over` on `base` table by table, to any depth: a file or a variable that sets one
    key of a table (one channel of `[query] weights`) keeps the table's other keys."""
    for section, values in over.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        _lay(base.setdefault(section, {}), values)


def _lay(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping):
            if not isinstance(base.get(key), dict):
                base[key] = {}
            _lay(base[key], value)
        else:
            base[key] = value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """`MNEMO_<SECTION>__<KEY>[__<KEY>…]` sets one key, at any depth; a value written as a
    TOML inline table (`{ lexical = 2.0 }`) is a table, laid over the default one."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, *path = name[len(ENV_PREFIX) :].lower().split("__")
        if section not in Settings.model_fields:
            raise ConfigError(f"{name}: there is no [{section}] section")
        if not all(path):
            raise ConfigError(f"{name}: an empty key between '__'")
        parsed: Any = value
        if value.lstrip().startswith("{"):
            try:
                parsed = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{name}: not a TOML inline table: {exc}") from exc
        _lay(out.setdefault(section, {}), _nest(path, parsed))
    return out


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(path[1:]):
        value = {key: value}
    return {path[0]: value}


def load_settings(
    *,
    home: str | Path | None = None,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    doc = _read_toml(default_config_path())
    extra = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    if extra:
        _merge(doc, _read_toml(Path(extra)), str(extra))
    _merge(doc, _env_overrides(env), "environment")
    chosen_home = home if home is not None else env.get(f"{ENV_PREFIX}HOME")
    if chosen_home:
        doc.setdefault("paths", {})["home"] = str(chosen_home)
    try:
        return Settings.model_validate(doc)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
