"""`mnemo serve` as a user runs it: a child process with its own Ray, the actors, the pumps
and uvicorn on loopback; keys, scopes, limits, the mem0 routes, metrics, the OpenAPI
document, and one-shot CLI commands that go through the running server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import EventLog, InputLog, StoreRequest
from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.pipeline.api.client import AccessDenied

ROOT = Path(__file__).resolve().parents[2]
SERVER_ENV: dict[str, str] = {}


def mnemo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mnemoflow.pipeline.cli", *args, "--home", str(home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def new_key(home: Path, *args: str) -> str:
    process = mnemo(home, "keys", "create", *args, "--json")
    assert process.returncode == 0, process.stderr
    return str(json.loads(process.stdout)["key"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("served") / "home"
    SERVER_ENV.update(os.environ)  # Ray keeps its auth token under this HOME
    keys = {"admin": new_key(home, "--admin"), "alice": new_key(home, "--ns", "alice")}
    with serving(home) as url:
        yield home, url, keys


@contextlib.contextmanager
def serving(home: Path, *options: str) -> Iterator[str]:
    """`mnemo serve` on `home` in a child process; its URL once it answers."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnemoflow.pipeline.cli",
            "serve",
            "--home",
            str(home),
            "--port",
            "0",
            *options,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("mnemo serving"), line
    url = line.split(" on ")[1].strip()
    try:
        yield url
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(60)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.stdout.close()
        assert child.returncode == 0
        assert not (home / "server.json").exists()


def test_store_and_recall_through_http(server: tuple[Path, str, dict[str, str]]) -> None:
    _, url, keys = server
    with Memory.connect(url, keys["alice"]) as mem:
        r = mem.store("Alice: my sister Jo lives in Porto.", "alice")
        hits = mem.recall("Where does Jo live?", "alice", k=3, min_position=r.position)
        assert hits[0].memory_id == r.memory_id
        assert {"semantic", "lexical"} <= set(hits[0].channels)
        assert any(e.stream == "extracted" for e in mem.audit(r.memory_id))


def test_the_mem0_routes(server: tuple[Path, str, dict[str, str]]) -> None:
    """mem0's users search right after they add: the search sees every write acknowledged
    before it began (it missed them until the service's pumps caught up)."""
    _, url, keys = server
    auth = {"Authorization": f"Bearer {keys['alice']}"}
    for i in range(12):  # a backlog for the actors, then the one searched for, at once
        httpx.post(
            f"{url}/memories/add",
            json={"user_id": "alice", "text": f"Alice's note {i} on the garden shed."},
            headers=auth,
        ).raise_for_status()
    added = httpx.post(
        f"{url}/memories/add",
        json={"user_id": "alice", "text": "Alice loves oolong tea."},
        headers=auth,
    )
    assert added.status_code == 200 and added.json()["results"][0]["event"] == "ADD"
    memory_id = added.json()["results"][0]["id"]
    found = httpx.post(
        f"{url}/memories/search",
        json={"user_id": "alice", "query": "what tea?", "limit": 2},
        headers=auth,
    )
    assert found.status_code == 200
    assert found.json()["results"][0]["id"] == memory_id
    health = httpx.get(f"{url}/health").json()
    assert health["ready"] is True and health["projected_position"] == health["input_position"]


def test_mem0s_add_says_what_became_of_the_memory(
    server: tuple[Path, str, dict[str, str]],
) -> None:
    """ADD for a memory of its own, UPDATE when it supersedes one (with the previous text),
    NONE when it was merged into an existing one as a duplicate (with that one's id), as
    mem0's add reports (it said ADD whatever happened)."""
    _, url, keys = server
    auth = {"Authorization": f"Bearer {keys['alice']}"}

    def add(text: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{url}/memories/add", json={"user_id": "alice", "text": text}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        return dict(result)

    first = add("Alice: I like espresso.")
    assert first["event"] == "ADD" and "pending" not in first
    denied = add("Alice: I don't like espresso anymore.")
    assert denied["event"] == "UPDATE" and denied["previous_memory"] == "Alice: I like espresso."
    again = add("Alice: I don't like espresso anymore.")
    assert again == {
        "id": denied["id"],
        "memory": "Alice: I don't like espresso anymore.",
        "event": "NONE",
    }


def test_a_restarted_service_answers_mem0_with_what_the_last_one_acknowledged(
    tmp_path: Path,
) -> None:
    """Memories acknowledged by a process that died before its actors saw them are in the log
    only. A search as soon as the new service answers sees them (it waited for none, and the
    actors of a service just started are seconds from their first batch); `/health` says
    whether the projections have caught up."""
    home = tmp_path / "home"
    with EventLog(home / "log") as log:  # acknowledged, then the process is gone
        InputLog(log).store_many(
            [
                StoreRequest(f"Dev's note {i}: the boat is moored at pier {i}.", "dev")
                for i in range(40)
            ]
            + [StoreRequest("Dev's kayak is red.", "dev")]
        )
    auth = {"Authorization": f"Bearer {new_key(home, '--ns', 'dev')}"}
    config = tmp_path / "slow-machine.toml"  # a shared CI machine: the wait's bound, not 10 s
    config.write_text("[query]\nwait_timeout = 240.0\n")
    with serving(home, "--config", str(config)) as url:
        found = httpx.post(
            f"{url}/memories/search",
            json={"user_id": "dev", "query": "kayak colour", "limit": 1},
            headers=auth,
            timeout=300,
        )
        assert found.status_code == 200, found.text
        assert [r["memory"] for r in found.json()["results"]] == ["Dev's kayak is red."]
        health = httpx.get(f"{url}/health").json()
        assert health["ready"] is True and health["projected_position"] == 41


def test_keys_are_scoped_and_checked(server: tuple[Path, str, dict[str, str]]) -> None:
    home, url, keys = server
    with Memory.connect(url, keys["admin"]) as admin:
        bob = admin.store("Bob's secret recipe needs saffron.", "bob")
        assert admin.verify().ok and "actors" in admin.stats()
    with Memory.connect(url, keys["alice"]) as alice:
        for call in (
            lambda: alice.store("sneaky", "bob"),
            lambda: alice.recall("recipe", "bob"),
            lambda: alice.erase("bob"),
            lambda: alice.audit(bob.memory_id),
            lambda: alice.forget(bob.memory_id),
            lambda: alice.verify(),
        ):
            with pytest.raises(AccessDenied) as denied:
                call()
            assert denied.value.status == 403
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "mnemo_wrong"}):
        response = httpx.post(
            f"{url}/recall", json={"query": "q", "namespace": "alice"}, headers=headers
        )
        assert response.status_code == 401 and response.json()["error"] == "Unauthorized"
    doomed = new_key(home, "--ns", "alice")
    key_id = doomed[: len("mnemo_") + 8]
    with Memory.connect(url, doomed) as mem:
        assert mem.store("before revocation", "alice").position > 0
        assert mnemo(home, "keys", "revoke", key_id).returncode == 0
        with pytest.raises(AccessDenied) as denied:
            mem.store("after revocation", "alice")
        assert denied.value.status == 401
    listed = mnemo(home, "keys", "list", "--json").stdout.splitlines()
    assert any(json.loads(line)["revoked"] for line in listed)


def test_bad_requests_are_4xx_json_and_change_nothing(
    server: tuple[Path, str, dict[str, str]],
) -> None:
    _, url, keys = server
    auth = {"Authorization": f"Bearer {keys['admin']}"}
    before = httpx.get(f"{url}/health").json()["input_position"]
    cases = [
        ("/store", {"text": "x" * 2_000_000, "namespace": "alice"}, 413),
        ("/store", {"text": 42, "namespace": "alice"}, 422),
        ("/store", {"text": "", "namespace": "alice"}, 400),
        ("/store", {"text": "ok", "namespace": "no spaces allowed"}, 400),
        ("/store", {"text": "ok", "namespace": "alice", "metadata": {"a": {"nested": 1}}}, 422),
        ("/recall", {"query": "q", "namespace": "alice", "k": 0}, 422),
        ("/recall", {"query": "q", "namespace": "alice", "k": 10**6}, 400),
        ("/recall", {"query": "q", "namespace": "never-seen"}, 404),
        ("/update", {"memory_id": "0" * 32, "text": "x"}, 404),
        ("/feedback", {"memory_id": "0" * 32, "useful": "yes"}, 422),
    ]
    for path, body, status in cases:
        response = httpx.post(f"{url}{path}", json=body, headers=auth)
        assert response.status_code == status, (path, body, response.text)
        assert set(response.json()) == {"error", "detail"}
    garbage = httpx.post(f"{url}/store", content=b"\xff{not json", headers=auth)
    assert garbage.status_code == 422
    assert httpx.get(f"{url}/health").json()["input_position"] == before


def test_metrics_health_and_openapi(server: tuple[Path, str, dict[str, str]]) -> None:
    _, url, keys = server
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert httpx.get(f"{url}/metrics").status_code == 401
    auth = {"Authorization": f"Bearer {keys['alice']}"}  # any valid key reads the totals
    metrics = httpx.get(f"{url}/metrics", headers=auth).text
    assert "# TYPE mnemo_http_requests_total counter" in metrics
    assert "# TYPE mnemo_http_request_seconds histogram" in metrics
    assert "# TYPE mnemo_recall_seconds histogram" in metrics
    assert 'mnemo_stream_events{stream="input"}' in metrics
    # the service's actors run in Ray: their lag comes from the runner's status
    assert 'mnemo_actor_lag{actor="extractor"}' in metrics
    assert 'mnemo_actor_lag{actor="embedder"}' in metrics
    spec = httpx.get(f"{url}/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for route in [
        ("POST", "/store"),
        ("POST", "/update"),
        ("POST", "/forget"),
        ("POST", "/feedback"),
        ("POST", "/recall"),
        ("GET", "/audit/{memory_id}"),
        ("GET", "/history/{memory_id}"),
        ("POST", "/erase"),
        ("GET", "/verify"),
        ("GET", "/stats"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("POST", "/memories/add"),
        ("POST", "/memories/search"),
    ]:
        assert route in routes, route
    store = spec["paths"]["/store"]["post"]
    assert "requestBody" in store and {"401", "403", "422"} <= set(store["responses"])


def test_one_shot_cli_commands_use_the_running_server(
    server: tuple[Path, str, dict[str, str]],
) -> None:
    home, _, _ = server
    stored = mnemo(home, "store", "Carol keeps bees on her roof.", "--ns", "carol", "--json")
    assert stored.returncode == 0, stored.stderr  # the server holds the log: it went through it
    position = json.loads(stored.stdout)["position"]
    listed = mnemo(home, "list", "--ns", "carol", "--json")
    assert listed.returncode == 0
    recalled = mnemo(home, "recall", "bees", "--ns", "carol", "--json")
    assert recalled.returncode == 0
    assert position > 0


def test_ingest_goes_through_the_running_server(
    server: tuple[Path, str, dict[str, str]], tmp_path: Path
) -> None:
    """`mnemo serve` holds the log, so `mnemo ingest` sends the rows to it (it failed with
    "the log is being written by another writer"), waits until they are recallable, stores
    nothing twice on a re-run, and names a refused row, keeping the rows before it."""
    home, _, _ = server
    lines = ["I grew up in Lisbon.", "I work nights as a nurse.", "My parrot is called Kiwi."]
    rows = [{"text": f"Dave: {line}", "namespace": "dave"} for line in lines]
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = mnemo(home, "ingest", str(good), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["rows"], report["stored"]) == (3, 3)
    # Caught up when it returns: the parrot is recallable at once.
    recalled = mnemo(home, "recall", "What is the parrot called?", "--ns", "dave", "--json")
    assert recalled.returncode == 0 and "Kiwi" in json.loads(recalled.stdout)[0]["text"]
    again = json.loads(mnemo(home, "ingest", str(good), "--json").stdout)
    assert (again["rows"], again["stored"]) == (3, 0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "Dave: Bees live on my roof.", "namespace": "dave"}) + "\n"
                   + json.dumps({"text": "", "namespace": "dave"}) + "\n")  # fmt: skip
    refused = mnemo(home, "ingest", str(bad))
    assert refused.returncode != 0 and "row 2" in refused.stderr, refused.stderr
    listed = mnemo(home, "list", "--ns", "dave", "--json")
    assert len(listed.stdout.splitlines()) == 4  # the bees are kept


def test_export_and_import_go_through_the_running_server(
    server: tuple[Path, str, dict[str, str]], tmp_path: Path
) -> None:
    """`mnemo import` beside `mnemo serve` sends the rows to it (POST /import) and returns
    once they are recallable; `mnemo export` reads through it (GET /export)."""
    home, _, _ = server
    elsewhere = tmp_path / "elsewhere"
    with Memory.open(elsewhere) as mem:
        kept = mem.store("Erin: my tortoise Basil is eighty years old.", "erin").memory_id
        mem.feedback(kept, True)
    out = tmp_path / "erin.jsonl"
    assert mnemo(elsewhere, "export", "--out", str(out)).returncode == 0
    done = mnemo(home, "import", str(out), "--ns-map", "erin=erin2", "--json")
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["added"], json.loads(done.stdout)["present"]) == (2, 0)
    recalled = mnemo(home, "recall", "How old is the tortoise?", "--ns", "erin2", "--json")
    assert json.loads(recalled.stdout)[0]["memory_id"] == kept
    again = json.loads(mnemo(home, "import", str(out), "--ns-map", "erin=erin2", "--json").stdout)
    assert (again["added"], again["present"]) == (0, 2)
    exported = mnemo(home, "export", "--ns", "erin2")
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()][1:-1]
    assert [(r["op"], r["memory_id"]) for r in rows] == [("store", kept), ("feedback", kept)]


def test_a_backup_of_the_running_service_restores_whole(
    server: tuple[Path, str, dict[str, str]], tmp_path: Path
) -> None:
    """`mnemo backup` beside `mnemo serve`, while stores go on through HTTP: the restore
    verifies and holds every store acknowledged before the backup began."""
    home, url, keys = server
    acknowledged: list[str] = []
    stop = threading.Event()

    def keep_storing() -> None:
        with Memory.connect(url, keys["admin"]) as mem:
            i = 0
            while not stop.is_set():
                acknowledged.append(mem.store(f"Fern: seedling {i} sprouted.", "fern").memory_id)
                i += 1

    writer = threading.Thread(target=keep_storing)
    writer.start()
    try:
        while len(acknowledged) < 20:
            time.sleep(0.02)
        before = list(acknowledged)
        made = mnemo(home, "backup", str(tmp_path / "b"), "--json")
        assert made.returncode == 0, made.stderr
        while len(acknowledged) < len(before) + 10:
            time.sleep(0.02)
    finally:
        stop.set()
        writer.join()
    done = mnemo(tmp_path / "restored", "restore", str(tmp_path / "b"), "--json")
    assert done.returncode == 0, done.stderr
    with Memory.open(tmp_path / "restored") as mem:
        held = {r.memory_id for r in mem.memories("fern", limit=10_000)}
        assert set(before) <= held
        assert mem.verify().ok
    assert mnemo(tmp_path / "restored", "verify").returncode == 0


def test_client_errors_are_the_api_errors(server: tuple[Path, str, dict[str, str]]) -> None:
    _, url, keys = server
    with Memory.connect(url, keys["alice"]) as mem, pytest.raises(ValidationError):
        mem.store("", "alice")


QUERY_DRIVER = """
import json, sys
import ray
doc = json.load(open(sys.argv[1]))
ray.init(address=doc["ray_address"], namespace="mnemo", log_to_driver=False)
actor = ray.get_actor(doc["query_actor"], namespace="mnemo")
out = {}
for name, key in json.loads(sys.argv[2]).items():
    try:
        hits = ray.get(actor.recall.remote("Who keeps bees?", "carol", 3, api_key=key))
        out[name] = [h["text"] for h in hits]
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)[-300:]
print(json.dumps(out))
"""


def test_another_ray_job_recalls_with_its_own_key_only(
    server: tuple[Path, str, dict[str, str]],
) -> None:
    """The query actor is no confused deputy: a driver on the cluster reaches carol's
    memories with a key for carol, and not with none, a wrong one or alice's."""
    home, url, keys = server
    carol = new_key(home, "--ns", "carol")
    with Memory.connect(url, keys["admin"]) as mem:
        r = mem.store("Carol keeps three hives of bees.", "carol")
        mem.recall("bees", "carol", min_position=r.position)
    callers = {"carol": carol, "alice": keys["alice"], "none": None, "wrong": "mnemo_not_a_key"}
    process = subprocess.run(
        [sys.executable, "-c", QUERY_DRIVER, str(home / "server.json"), json.dumps(callers)],
        cwd=ROOT,
        # The same HOME as the server (Ray keeps the cluster's auth token there).
        env={**SERVER_ENV, "RAY_AUTH_MODE": "token"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    out = json.loads(process.stdout.strip().splitlines()[-1])
    assert "Carol keeps three hives of bees." in out["carol"]
    for refused in ("alice", "none", "wrong"):
        assert isinstance(out[refused], str) and "AccessDenied" in out[refused], out[refused]
        assert "bees" not in out[refused]


def test_rederive_beside_the_running_service_switches_without_a_pause_in_answers(
    server: tuple[Path, str, dict[str, str]],
) -> None:
    """`mnemo rederive` beside `mnemo serve`: the service writes the new generation on a
    thread while it goes on storing and answering (no recall fails meanwhile), then switches
    in one step: new memories and queries use the new model from then on."""
    home, url, keys = server
    with Memory.connect(url, keys["admin"]) as mem:
        last = None
        for i in range(30):
            last = mem.store(f"Gus: I keep {['bees', 'hens', 'goats'][i % 3]}, batch {i}.", "gus")
        assert last is not None
        question = "What animals does Gus keep?"
        before = [h.memory_id for h in mem.recall(question, "gus", min_position=last.position)]
        answers: list[list[str]] = []
        errors: list[Exception] = []
        stop = threading.Event()

        def keep_using() -> None:
            with Memory.connect(url, keys["admin"]) as other:
                while not stop.is_set():
                    try:
                        answers.append([h.memory_id for h in other.recall(question, "gus")])
                        other.store("Gus: the hens laid well today.", "gus")
                    except Exception as exc:  # any failure is what the test looks for
                        errors.append(exc)

        user = threading.Thread(target=keep_using)
        user.start()
        try:
            done = mnemo(home, "rederive", "embedder", "--model-id", "minilm-served", "--json")
        finally:
            stop.set()
            user.join()
        assert done.returncode == 0, done.stderr
        state = json.loads(done.stdout)
        assert state["state"] == "switched" and state["generation"] >= 2
        assert not errors and len(answers) > 3
        layout = json.loads((home / "log/generations.json").read_text())
        assert layout["current"] == state["generation"] and layout["pending"] is None
        fresh = mem.store("Gus: I also keep two donkeys now.", "gus")
        hits = mem.recall("Does Gus keep donkeys?", "gus", min_position=fresh.position)
        assert hits[0].memory_id == fresh.memory_id and hits[0].channels["semantic"] > 0
        models = [e.payload["model_id"] for e in mem.audit(fresh.memory_id)
                  if e.kind == "memory.embedded" and e.payload]  # fmt: skip
        assert models and all(m.startswith("minilm-served") for m in models)
        after = [h.memory_id for h in mem.recall(question, "gus")]
        assert set(before[:3]) & set(after)  # the same model file: the same kind of answers
        assert mem.verify().ok


def test_a_log_written_by_an_older_mnemoflow_is_served(tmp_path: Path) -> None:
    """The fixture log of the first versioned mnemoflow (tests/fixtures/log-v1), served: the
    service rebuilds its projections, derives nothing twice, verifies and answers."""
    home = tmp_path / "old"
    shutil.copytree(ROOT / "tests" / "fixtures" / "log-v1", home)
    admin = new_key(home, "--admin")
    with serving(home) as url, Memory.connect(url, admin) as mem:
        assert mem.verify().ok
        deadline = time.monotonic() + 60
        while not mem.health()["ready"] and time.monotonic() < deadline:
            time.sleep(0.2)
        hits = mem.recall("What is Rosa's dog called?", "rosa", k=3)
        assert "Biscuit" in hits[0].text and hits[0].channels["semantic"] > 0
        r = mem.store("Rosa: Biscuit turned five.", "rosa")
        assert mem.recall("How old is Biscuit?", "rosa", min_position=r.position)[0].text == (
            "Rosa: Biscuit turned five."
        )
        embedded = mem.stats()["streams"]["embedded"]["events"]
    with EventLog(ROOT / "tests" / "fixtures" / "log-v1" / "log", writable=False) as log:
        assert embedded == log.stream("embedded").last_position + 1  # none derived twice


def test_the_readme_set_up_runs_as_written(tmp_path: Path) -> None:
    """The README's first command serves `--open` on loopback; its curl calls and the CLI
    call after them work against it as written (the port swapped for a free one)."""
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set-up") : readme.index("## Quickstart")]
    first = re.findall(r"```bash\n(.*?)```", setup, re.S)[0]
    assert first.strip() == "python -m pip install -c constraints.txt -e . && mnemo serve --open"
    calls = re.findall(r"```bash\n(curl .*?)```", setup, re.S)[0]
    env = {**os.environ, "MNEMO_HOME": str(tmp_path / "home")}
    child = subprocess.Popen(
        [sys.executable, "-m", "mnemoflow.pipeline.cli", "serve", "--open", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    try:
        url = child.stdout.readline().split(" on ")[1].strip()
        script = calls.replace("localhost:8765", url).replace(
            "mnemo recall", "python -m pipeline.cli recall"
        )
        done = subprocess.run(
            ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        decoder = json.JSONDecoder()
        stored, end = decoder.raw_decode(done.stdout)  # curl prints no newline after a body
        recalled, end = decoder.raw_decode(done.stdout, end)
        assert stored["position"] == 1
        assert recalled[0]["text"] == "Alice moved to Lyon in May"  # min_position: seen
        assert "Alice moved to Lyon in May" in done.stdout[end:]  # the CLI, via the server
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(60)
        child.stdout.close()


def test_the_readme_mcp_config_names_the_real_command() -> None:
    readme = (ROOT / "README.md").read_text()
    mcp = readme[readme.index("## MCP") : readme.index("## Batch ingestion")]
    config = json.loads(re.search(r"```json\n(.*?)```", mcp, re.S).group(1))  # type: ignore[union-attr]
    server = config["mcpServers"]["mnemoflow"]
    assert server["command"] == "mnemo" and server["args"][0] == "mcp"
    assert "claude mcp add mnemoflow -- mnemo mcp" in mcp


def test_served_connections_send_without_delay() -> None:
    """Connections accepted on the server's socket under asyncio (as uvicorn accepts them)
    have TCP_NODELAY: a keep-alive client is not held ~40 ms per response by Nagle."""
    import asyncio
    import socket

    from mnemoflow.pipeline.http.serve import listening_socket

    async def run() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        sock = listening_socket("127.0.0.1", 0)
        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            flag = await asyncio.wait_for(seen, 10)
            writer.close()
            return flag

    assert asyncio.run(run()) == 1
    with pytest.raises(Exception, match=r"cannot listen on 127\.0\.0\.1"):
        busy = listening_socket("127.0.0.1", 0)
        try:
            listening_socket("127.0.0.1", busy.getsockname()[1])
        finally:
            busy.close()
