"""Export and import: a round trip gives the same memories, histories and recall; an import
run twice adds nothing; a bad row is named and the rows before it kept; mem0's export and the
ingest formats come in through `mnemo import`; over HTTP only for the keys allowed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import StoreRequest
from mnemoflow.eventlog.errors import MemoryIdTaken, NamespaceNotFound, ValidationError
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.client import AccessDenied
from mnemoflow.pipeline.api.errors import ImportRejected
from mnemoflow.pipeline.api.transfer import export_lines, mem0_rows, source_rows
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.httpserver import serving
from tests.pipeline.test_cli import mnemo, ok_json

PARIS = timezone(timedelta(hours=2))
QUERIES = ["Where does Alice live?", "What tea does Alice like?", "Which instrument?", "dog"]


def _fill(mem: Any) -> dict[str, str]:
    """Stores, an update with and without metadata, a forget, feedback, in two namespaces, and
    a third namespace erased; returns memory ids by name."""
    ids = {}
    day = datetime(2024, 5, 8, 13, 56, tzinfo=PARIS)
    for i, (name, text, ns) in enumerate(
        [
            ("lisbon", "Alice moved to Lisbon in May.", "alice"),
            ("tea", "Alice likes green tea.", "alice"),
            ("dog", "Alice adopted a dog named Pepper.", "alice"),
            ("cello", "Bob plays the cello in an orchestra.", "bob"),
            ("cat", "Bob has a cat called Miso.", "bob"),
        ]
    ):
        meta = {"source": "chat", "turn": i}
        ids[name] = mem.store(text, ns, meta, day + timedelta(days=i)).memory_id
    mem.update(ids["tea"], "Alice likes jasmine tea now.", {"changed": True})
    mem.update(ids["lisbon"], "Alice moved to Porto in June.", occurred_at=day + timedelta(days=40))
    mem.forget(ids["cat"], reason="wrong cat")
    mem.feedback(ids["dog"], True, note="answered it")
    mem.feedback(ids["cello"], False)
    mem.store("Carol's secret diary entry.", "carol")
    mem.erase("carol")
    return ids


def _fill_episodes(mem: Any) -> list[str]:
    """Two episodes: one scored from its steps, one given its score; a third's namespace
    erased."""
    day = datetime(2024, 6, 1, 9, 0, tzinfo=PARIS)
    first = mem.episodes.start(
        "Book a table for four", "alice", domain="food", tags=["booking"], occurred_at=day
    ).memory_id
    mem.episodes.step(
        first, "web", "search", latency_ms=80.0, occurred_at=day + timedelta(seconds=3)
    )
    mem.episodes.step(
        first, "phone", "call", error="no answer", occurred_at=day + timedelta(seconds=9)
    )
    mem.episodes.complete(first, True, result="booked", occurred_at=day + timedelta(minutes=4))
    second = mem.episodes.start("Fix the bike", "bob", occurred_at=day).memory_id
    mem.episodes.complete(
        second, False, score=0.2, error="no parts", occurred_at=day + timedelta(hours=1)
    )
    gone = mem.episodes.start("Carol's private errand", "carol2").memory_id
    mem.episodes.step(gone, "maps", "route")
    mem.erase("carol2")
    return [first, second]


def _lines(export: Iterator[dict[str, Any]]) -> list[str]:
    return [json.dumps(doc, ensure_ascii=False) for doc in export]


def _same_memories(a: Any, b: Any, ids: dict[str, str], namespaces: dict[str, str]) -> None:
    for old, new in namespaces.items():
        assert a.memories(old, status=None)
        for status in ("active", "forgotten"):
            left = [
                (r.memory_id, r.text, r.metadata, r.occurred_at, r.version)
                for r in a.memories(old, status=status)
            ]
            right = [
                (r.memory_id, r.text, r.metadata, r.occurred_at, r.version)
                for r in b.memories(new, status=status)
            ]
            assert left == right, (old, status)
    for memory_id in ids.values():
        assert [(e.kind, e.payload, e.occurred_at, e.memory_id) for e in a.history(memory_id)] == [
            (e.kind, e.payload, e.occurred_at, e.memory_id) for e in b.history(memory_id)
        ]
    for query in QUERIES:
        for old, new in namespaces.items():
            assert [(h.memory_id, round(h.score, 6)) for h in a.recall(query, old)] == [
                (h.memory_id, round(h.score, 6)) for h in b.recall(query, new)
            ], query


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Memory]:
    with Memory.open(tmp_path / "source") as mem:
        yield mem


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Memory]:
    with Memory.open(tmp_path / "target") as mem:
        yield mem


def test_a_round_trip_gives_the_same_memories_histories_and_recall(
    source: Memory, target: Memory
) -> None:
    ids = _fill(source)
    episodes = _fill_episodes(source)
    lines = _lines(source.export())
    header, *rows, end = (json.loads(line) for line in lines)
    assert header["format"] == "mnemoflow.export" and header["version"] == 1
    assert header["namespaces"] == ["alice", "bob"] and end == {"end": True, "rows": 16}
    assert [r["op"] for r in rows].count("store") == 5
    assert "errand" not in "".join(lines)
    # the writer's clock is kept; the erased namespace is absent, name and words
    assert rows[0]["occurred_at"] == "2024-05-08T13:56:00+02:00"
    assert "carol" not in "".join(lines).lower() and "diary" not in "".join(lines)

    report = target.import_rows(export_lines(lines))
    assert (report.rows, report.added, report.present) == (16, 16, 0)
    _same_memories(source, target, ids, {"alice": "alice", "bob": "bob"})
    for episode_id in episodes:
        assert target.episodes.get(episode_id) == source.episodes.get(episode_id)
    task = ("book a table", "alice")
    assert source.context(*task).to_json() == target.context(*task).to_json()
    assert target.verify().ok

    last = target.log.input.last_position
    again = target.import_rows(export_lines(lines))
    assert (again.rows, again.added, again.present) == (16, 0, 16)
    assert target.log.input.last_position == last  # nothing appended
    home = source.import_rows(export_lines(lines))  # nor into the log it came from
    assert (home.added, home.present) == (0, 16)


def test_import_maps_namespaces_and_export_takes_some_as_of_a_point(
    source: Memory, target: Memory
) -> None:
    ids = _fill(source)
    bob_only = _lines(source.export(["bob"]))
    assert {json.loads(line).get("ns") for line in bob_only[1:-1]} == {"bob"}
    target.import_rows(export_lines(bob_only), {"bob": "robert"})
    assert target.namespaces() == ["robert"]
    _same_memories(source, target, {"cello": ids["cello"]}, {"bob": "robert"})

    as_of_three = [json.loads(line) for line in _lines(source.export(as_of=3))]
    assert [r["memory_id"] for r in as_of_three[1:-1]] == [ids["lisbon"], ids["tea"], ids["dog"]]
    with pytest.raises(NamespaceNotFound):
        next(source.export(["carol"]))  # erased: its name is gone


def test_a_bad_row_is_named_and_the_rows_before_it_are_kept(source: Memory, target: Memory) -> None:
    _fill(source)
    lines = _lines(source.export())
    broken = json.loads(lines[3])
    broken["text"] = 42
    bad = [*lines[:3], json.dumps(broken), *lines[4:]]
    with pytest.raises(ImportRejected, match=r"^line 4: text: "):
        target.import_rows(export_lines(bad))
    assert target.log.input.last_position == 2  # lines 2 and 3: the rows before it

    # cut short: what it held is imported, then the missing end is named
    with pytest.raises(ImportRejected, match="without its end line"):
        target.import_rows(export_lines(lines[:6]))
    assert target.log.input.last_position == 5

    newer = json.dumps({**json.loads(lines[0]), "version": 2})
    with pytest.raises(ImportRejected, match="version 2 is newer"):
        target.import_rows(export_lines([newer, *lines[1:]]))
    with pytest.raises(ImportRejected, match="line 1: not a mnemoflow export"):
        target.import_rows(export_lines(lines[1:]))
    with pytest.raises(ImportRejected, match="line 3: not JSON"):
        target.import_rows(export_lines([lines[0], lines[1], "{oops", *lines[2:]]))
    assert target.log.input.last_position == 5  # none of those added anything

    report = target.import_rows(export_lines(lines))  # the whole file completes it
    assert (report.added, report.present) == (5, 5)


def test_a_memory_id_in_use_is_refused_by_row(source: Memory, target: Memory) -> None:
    _fill(source)
    lines = _lines(source.export())
    first = json.loads(lines[1])
    target.store_many([StoreRequest("something else", "zed", memory_id=first["memory_id"])])
    with pytest.raises(
        ImportRejected, match=rf"^line 2: memory id {first['memory_id']} is already"
    ):
        target.import_rows(export_lines(lines))
    assert target.log.input.last_position == 1
    with pytest.raises(MemoryIdTaken):
        target.store_many([StoreRequest("again", "zed", memory_id=first["memory_id"])])
    with pytest.raises(ValidationError, match="chosen twice"):
        target.store_many([StoreRequest("x", "zed", memory_id="m1") for _ in range(2)])
    # a change to a memory of another namespace is refused too
    update = next(json.loads(line) for line in lines if '"op": "update"' in line)
    change = {**update, "memory_id": first["memory_id"]}
    with pytest.raises(ImportRejected, match=r"line 2: memory .* is not in namespace"):
        target.import_rows(export_lines([lines[0], json.dumps(change), lines[-1]]))


MEM0 = [
    {
        "id": "0b8c2a56-8f4e-4f43-a1c3-6b1bd5f1f0e1",
        "memory": "Likes to play cricket on weekends",
        "hash": "285d07801ae42054732314853e9eadd7",
        "metadata": {"source": "onboarding", "tags": ["sport", "weekend"]},
        "categories": ["hobbies"],
        "created_at": "2024-07-26T10:29:36.630547-07:00",
        "updated_at": None,
        "user_id": "alex",
    },
    {
        "id": "8c1f1b9e-0d7a-4c52-9f4b-0c5b0b8e7d11",
        "memory": "Is a vegetarian and allergic to nuts",
        "created_at": "2024-07-26T10:30:01.000000-07:00",
        "agent_id": "chef-bot",
    },
]


def test_mem0s_export_imports_as_stores_with_its_ids_and_owners(
    tmp_path: Path, target: Memory
) -> None:
    path = tmp_path / "mem0.json"
    path.write_text(json.dumps({"results": MEM0}))
    rows = source_rows(path)
    assert rows is not None
    report = target.import_rows(rows)
    assert (report.rows, report.added) == (2, 2)
    cricket = target.get(MEM0[0]["id"])
    assert cricket is not None and cricket.namespace == "alex"
    assert cricket.metadata == {
        "source": "onboarding",
        "tags": '["sport", "weekend"]',
        "categories": '["hobbies"]',
    }
    assert cricket.occurred_at == datetime(2024, 7, 26, 17, 29, 36, 630547, tzinfo=UTC)
    assert target.memories("chef-bot")[0].memory_id == MEM0[1]["id"]
    assert target.recall("what sport?", "alex", k=1)[0].memory_id == MEM0[0]["id"]
    again = target.import_rows(mem0_rows(MEM0))
    assert (again.added, again.present) == (0, 2)

    with pytest.raises(ImportRejected, match="memory 1: no user_id, agent_id or run_id"):
        list(mem0_rows([{"id": "x1", "memory": "no owner"}]))
    assert [r.ns for _, r in mem0_rows([{"id": "x1", "memory": "mine"}], "fallback")] == [
        "fallback"
    ]
    with pytest.raises(ImportRejected, match="memory 1: text"):
        list(mem0_rows([{"id": "x1", "memory": None, "user_id": "u"}]))


def test_the_cli_exports_to_a_file_and_imports_it_elsewhere(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    with Memory.open(a) as mem:
        ids = _fill(mem)
    out = tmp_path / "out" / "export.jsonl"
    out.parent.mkdir()
    assert ok_json(a, "export", "--out", str(out)) == {"rows": 10, "out": str(out)}
    assert out.stat().st_mode & 0o777 == 0o600  # in clear: its owner's only
    assert not (out.parent / "export.jsonl.tmp").exists()
    stdout = mnemo(a, "export", "--ns", "alice")
    assert stdout.returncode == 0 and json.loads(stdout.stdout.splitlines()[-1])["end"]

    done = ok_json(b, "import", str(out), "--ns-map", "bob=robert")
    assert (done["rows"], done["added"], done["present"]) == (10, 10, 0)
    again = ok_json(b, "import", str(out), "--ns-map", "bob=robert")
    assert (again["added"], again["present"]) == (0, 10)
    with Memory.open(a) as left, Memory.open(b) as right:
        _same_memories(left, right, ids, {"alice": "alice", "bob": "robert"})

    # mem0's JSON and a file `mnemo ingest` reads come in through the same command
    (tmp_path / "mem0.json").write_text(json.dumps(MEM0))
    assert ok_json(b, "import", str(tmp_path / "mem0.json"))["added"] == 2
    (tmp_path / "notes.jsonl").write_text(json.dumps({"text": "Dana runs marathons."}) + "\n")
    assert ok_json(b, "import", str(tmp_path / "notes.jsonl"), "--ns", "dana")["stored"] == 1
    bad = mnemo(b, "import", str(tmp_path / "notes.jsonl"), "--ns-map", "x")
    assert bad.returncode == 1 and "--ns-map" in bad.stderr


class TestOverHttp:
    @pytest.fixture
    def served(self, home: Path) -> Iterator[tuple[str, KeyStore, dict[str, str]]]:
        with Memory.open(home=home) as mem:
            ids = _fill(mem)
            keys = KeyStore(home / "keys.json")
            with serving(create_app(mem, keys)) as url:
                yield url, keys, ids

    def test_export_and_import_through_the_service(
        self, served: tuple[str, KeyStore, dict[str, str]], target: Memory
    ) -> None:
        url, keys, ids = served
        admin, _ = keys.create([], admin=True)
        with Memory.connect(url, admin) as remote:
            lines = _lines(remote.export())
            assert json.loads(lines[-1]) == {"end": True, "rows": 10}
            target.import_rows(export_lines(lines))
            # back into the log it came from, through POST /import: nothing to add
            report = remote.import_rows(export_lines(lines))
            assert (report.rows, report.added, report.present) == (10, 0, 10)
            with pytest.raises(NamespaceNotFound):
                list(remote.export(["carol"]))
        with Memory.connect(url, admin) as remote:
            _same_memories(remote, target, ids, {"alice": "alice", "bob": "bob"})

    def test_a_scoped_key_exports_its_namespaces_only_and_cannot_import(
        self, served: tuple[str, KeyStore, dict[str, str]]
    ) -> None:
        url, keys, _ = served
        alice, _ = keys.create(["alice"])
        with Memory.connect(url, alice) as remote:
            rows = [json.loads(line) for line in _lines(remote.export(["alice"]))][1:-1]
            assert rows and {r["ns"] for r in rows} == {"alice"}
            with pytest.raises(AccessDenied) as denied:
                list(remote.export(["bob"]))
            assert denied.value.status == 403
            with pytest.raises(AccessDenied):
                list(remote.export())  # everything: admin only
            lines = [json.dumps(r) for r in rows]
            header = json.dumps({"format": "mnemoflow.export", "version": 1})
            end = json.dumps({"end": True, "rows": len(rows)})
            with pytest.raises(AccessDenied):
                remote.import_rows(export_lines([header, *lines, end]))
