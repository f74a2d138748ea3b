"""The `mnemo` command line, run as a user runs it: a real process per command."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.child import python_says

ROOT = Path(__file__).resolve().parents[2]


def mnemo(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    raw = subprocess.run(
        [sys.executable, "-m", "mnemoflow.pipeline.cli", *args, "--home", str(home)],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
    )


def ok_json(home: Path, *args: str) -> Any:
    process = mnemo(home, *args, "--json")
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


def test_console_script_is_installed() -> None:
    """The README's first command relies on the `mnemo` entry point."""
    path = shutil.which("mnemo")
    assert path is not None
    process = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
    assert process.returncode == 0 and "store" in process.stdout


def test_store_update_feedback_forget_history(tmp_path: Path) -> None:
    home = tmp_path / "h"
    stored = ok_json(
        home,
        "store",
        "Alice moved to Lyon",
        "--ns",
        "alice",
        "--meta",
        "src=chat",
        "--at",
        "2023-05-08T13:56:00+00:00",
        "--id",
        "chat:1",
    )
    memory_id = stored["memory_id"]
    assert stored["position"] == 1 and stored["event_id"].startswith("id:")  # keyed, not "chat:1"
    assert ok_json(home, "store", "again", "--ns", "alice", "--id", "chat:1") == stored
    assert ok_json(home, "update", memory_id, "Alice moved to Paris")["position"] == 2
    assert ok_json(home, "feedback", memory_id, "--useful")["position"] == 3
    assert ok_json(home, "forget", memory_id)["position"] == 4
    history = mnemo(home, "history", memory_id, "--json").stdout.splitlines()
    events = [json.loads(line) for line in history]
    assert [e["kind"] for e in events] == [
        "memory.stored",
        "memory.updated",
        "feedback.recorded",
        "memory.forgotten",
    ]
    assert events[0]["payload"] == {"text": "Alice moved to Lyon", "metadata": {"src": "chat"}}
    assert events[0]["occurred_at"] == "2023-05-08T13:56:00+00:00"
    assert events[0]["actor"] == "cli"


def test_log_filters_and_erasure(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok_json(home, "store", "secret of alice", "--ns", "alice")
    ok_json(home, "store", "bob's note", "--ns", "bob")
    lines = mnemo(home, "log", "--ns", "bob", "--json").stdout.splitlines()
    assert [json.loads(line)["payload"]["text"] for line in lines] == ["bob's note"]
    assert len(mnemo(home, "log", "--from", "2", "--json").stdout.splitlines()) == 1
    erased = ok_json(home, "erase", "--ns", "alice")
    assert erased["position"] == 3
    text = mnemo(home, "log").stdout
    assert "[erased]" in text and "secret of alice" not in text and "bob's note" in text
    kinds = mnemo(home, "log", "--kind", "subject.erased", "--json").stdout.splitlines()
    assert [json.loads(line)["erased"] for line in kinds] == [False]  # the erase event is clear
    assert ok_json(home, "verify")["ok"] is True


def test_verify_fails_with_exit_1_naming_the_position(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ids = [ok_json(home, "store", f"memory {i}", "--ns", "n")["event_id"] for i in range(3)]
    segment = next((home / "log" / "streams" / "input").glob("*.arrow"))
    data = bytearray(segment.read_bytes())
    offset = bytes(data).find(ids[1].encode())
    data[offset + 3] ^= 0x01
    segment.write_bytes(bytes(data))
    process = mnemo(home, "verify")
    assert process.returncode == 1
    assert "position 2" in process.stdout and segment.name in process.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["store", "", "--ns", "a"], None, "text is empty"),
        (["store", "-", "--ns", "a"], b"\xff\xfe bad", "not valid UTF-8"),
        (["store", "x", "--ns", "no spaces"], None, "namespace must match"),
        (["store", "x", "--ns", "a", "--meta", "novalue"], None, "key=value"),
        (["store", "x", "--ns", "a", "--at", "someday"], None, "ISO 8601"),
        (["store", "x", "--ns", "a", "--at", "2023-13-45"], None, "--at '2023-13-45' is not"),
        (["store", "x" * 70000, "--ns", "a"], None, "[log] max_text_bytes"),
        (["update", "0123abcd", "x"], None, "no memory"),
        (["erase", "--ns", "nobody"], None, "no namespace"),
    ],
)
def test_errors_are_one_line_on_stderr(
    tmp_path: Path, args: list[str], stdin: bytes | None, message: str
) -> None:
    home = tmp_path / "h"
    process = mnemo(home, *args, stdin=stdin)
    assert process.returncode == 1
    assert process.stdout == ""
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnemo: error: ") and message in lines[0]
    log = mnemo(home, "log", "--json")
    assert log.stdout == ""  # nothing was appended


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    process = mnemo(tmp_path, "feedback", "abc")
    assert process.returncode == 2 and "--useful" in process.stderr


def test_home_from_environment(tmp_path: Path) -> None:
    home = tmp_path / "env-home"
    process = subprocess.run(
        [sys.executable, "-m", "mnemoflow.pipeline.cli", "store", "x", "--ns", "n"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MNEMO_HOME": str(home)},
    )
    assert process.returncode == 0, process.stderr
    assert list((home / "log" / "streams" / "input").glob("*.arrow"))


def test_bench_log_smoke(tmp_path: Path) -> None:
    """The benchmark runs end to end and reports every figure (values are not asserted)."""
    result = ok_json(tmp_path, "bench", "log", "--events", "2000")["log"]
    assert set(result["appends_per_s"]) == {"batch_1", "batch_100", "batch_1000"}
    assert all(v > 0 for v in result["appends_per_s"].values())
    assert result["verify_ok"] is True
    assert result["events"] >= 2000 + 2 * 200
    assert result["single_append_ms"]["p99"] >= result["single_append_ms"]["p50"] > 0


def test_bench_transfer_smoke(tmp_path: Path) -> None:
    result = ok_json(tmp_path, "bench", "transfer", "--memories", "400")["transfer"]
    assert result["rows"] == 400 + result["changes"] and result["changes"] == 20 + 8 + 4
    assert result["import_added"] == result["rows"] and result["reimport_added"] == 0
    assert result["export_rows_per_s"] > 0 and result["import_vs_plain_calls"] > 0
    assert result["backup_bytes"] > 0 and result["stores_during_backup"] >= 1
    during = result["store_during_backup"]
    assert during["p99_ms"] >= during["p50_ms"] > 0


def test_bench_rederive_smoke(tmp_path: Path) -> None:
    result = ok_json(tmp_path, "bench", "rederive", "--ingest-memories", "60")["rederive"]
    assert result["memories"] == 60 and result["derived_events"] >= 60
    assert result["memories_per_s"] > 0 and result["ratio"] > 0
    assert result["recall_alone"]["p50_ms"] > 0 and result["recalls_during"] >= 1


def test_bench_episodes_smoke(tmp_path: Path) -> None:
    result = ok_json(tmp_path, "bench", "episodes", "--episodes", "40")["episodes"]
    assert result["episodes"] == 40 and result["steps_per_s_in_batches_of_100"] > 0
    assert result["context"]["p99_ms"] >= result["context"]["p50_ms"] > 0
    assert result["single_step"]["p50_ms"] > 0 and result["step_vs_store_p50"] > 0


def test_bench_patterns_smoke(tmp_path: Path) -> None:
    args = ("bench", "patterns", "--suite-sizes", "30,120", "--burst", "20")
    result = ok_json(tmp_path, *args)["patterns"]
    assert [row["episodes"] for row in result["growth"]] == [30, 120]
    last = result["growth"][-1]
    assert set(last["kinds"]) == {"tool_sequence", "decision_point", "error_recovery"}
    assert last["kinds"]["tool_sequence"]["recall"] > 0 and last["recipe_first"] > 0
    assert result["burst_lag_s"] > 0 and result["events"] > 0


def test_bench_dashboard_smoke(tmp_path: Path) -> None:
    args = ("bench", "dashboard", "--memories", "300", "--rounds", "2")
    result = ok_json(tmp_path, *args)["dashboard"]
    assert result["memories"] == 300 and result["build_s"] > 0
    assert set(result["pages"]) >= {"namespaces", "search", "a memory", "its graph"}
    assert all(p["p95_ms"] >= p["p50_ms"] > 0 for p in result["pages"].values())


def test_bench_embedder_and_rebuild_smoke(tmp_path: Path) -> None:
    embedder = ok_json(tmp_path, "bench", "embedder", "--sentences", "64")["embedder"]
    assert set(embedder["sentences_per_s"]) == {"batch_1", "batch_64"}
    assert all(v > 0 for v in embedder["sentences_per_s"].values())
    rebuild = ok_json(tmp_path, "bench", "rebuild", "--memories", "300")["rebuild"]
    assert rebuild["events_replayed"] == 600
    assert rebuild["rebuild_memories_per_s"] > 0
    per = rebuild["disk_bytes_per_memory"]
    assert per["total"] == pytest.approx(per["log"] + per["duckdb"] + per["faiss"], abs=3)


def test_sync_stats_list_get_rebuild(tmp_path: Path) -> None:
    home = tmp_path / "h"
    first = ok_json(home, "store", "Alice moved to Lyon", "--ns", "alice")
    ok_json(home, "store", "Alice adopted a cat", "--ns", "alice")
    stats = ok_json(home, "stats")
    assert stats["actors"]["embedder"]["lag"] == 2
    # 4 actors derive from each store; the consolidator, with nothing to merge, and the patterns
    # actor, with no episode to learn from, note their progress
    assert ok_json(home, "sync") == {"derived": 8, "applied": 12}
    stats = ok_json(home, "stats")
    assert stats["memories"]["vectors"] == 2 and stats["actors"]["embedder"]["lag"] == 0
    row = ok_json(home, "get", first["memory_id"])
    assert row["text"] == "Alice moved to Lyon" and row["status"] == "active"
    listed = mnemo(home, "list", "--ns", "alice", "--json").stdout.splitlines()
    assert [json.loads(line)["text"] for line in listed] == [
        "Alice moved to Lyon",
        "Alice adopted a cat",
    ]
    assert ok_json(home, "rebuild")["replayed"] == 12
    past = ok_json(home, "rebuild", "--as-of", "1", "--into", str(tmp_path / "past"))
    assert past["stats"]["memories"]["total"] == 1
    process = mnemo(home, "get", "0123456789abcdef")
    assert process.returncode == 1 and "no memory" in process.stderr


def test_bench_recall_smoke(tmp_path: Path) -> None:
    """Latency percentiles per size, the brute-force baseline and their ratio."""
    result = ok_json(tmp_path, "bench", "recall", "--sizes", "150,300", "--queries", "25")
    recall = result["recall"]
    assert recall["k"] == 10 and recall["real_vectors"] is False
    for size in ("150", "300"):
        ours, base = recall[size]["python_api"], recall[size]["brute_force_dense"]
        assert 0 < ours["p50_ms"] <= ours["p95_ms"] <= ours["p99_ms"]
        assert base["p50_ms"] > 0
        assert recall[size]["ratio_p50"] == round(ours["p50_ms"] / base["p50_ms"], 2)
        # Below `approximate_above` the index is flat: its search is the exact one.
        assert recall[size]["semantic_index_recall_at_10"] == 1.0
    bad = mnemo(tmp_path, "bench", "recall", "--sizes", "ten")
    assert bad.returncode == 1 and "--sizes" in bad.stderr


def test_bench_all_smoke(tmp_path: Path) -> None:
    """`mnemo bench` with every section, small: log, ingest (and its ratio to the model
    alone), recall over the Python API and HTTP (`mnemo serve` as a child) with the
    brute-force baseline, rebuild, footprint, and the plot."""
    from tests.pipeline.test_ingest import within_rounding

    plot = tmp_path / "latency.png"
    process = mnemo(
        tmp_path,
        "bench",
        "--sizes",
        "150",
        "--queries",
        "20",
        "--ingest-memories",
        "40",
        "--events",
        "400",
        "--plot",
        str(plot),
        "--json",
    )
    assert process.returncode == 0, process.stderr
    result = json.loads(process.stdout)
    assert set(result) == {"log", "ingest", "recall", "cold_recall", "rebuild", "footprint"}
    assert result["log"]["appends_per_s"]["batch_100"] > 0 and result["log"]["verify_ok"]
    ingest = result["ingest"]
    raw = ingest["raw_embedder_memories_per_s"]
    assert ingest["memories"] == 40 and raw > 0
    assert within_rounding(ingest["ratio"], ingest["memories_per_s"], raw)
    assert ingest["warm_up"]["memories"] == 4 and ingest["warm_up"]["seconds"] > 0
    for channel in ("python_api", "http", "brute_force_dense", "after_store"):
        figures = result["recall"]["150"][channel]
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    rebuild = result["rebuild"]
    # Every stream is replayed: more events than memories (input, extracted, embedded, ...).
    assert rebuild["memories"] == 150 and rebuild["events_replayed"] > 5 * 150
    footprint = result["footprint"]
    assert footprint["at_memories"] == 150
    # The server, Ray's processes and the actors: more than one process, and their memory.
    assert footprint["by_size"]["150"]["processes"] > 5
    assert footprint["rss_bytes"] > 200 * 2**20
    # The peak includes a store derived by every actor, after the recall-only peak.
    live = footprint["by_size"]["150"]
    assert live["rss_bytes"] >= live["rss_recall_only_bytes"] > 200 * 2**20
    assert live["store_derived_s"] >= 0
    parts = footprint["by_size"]["150"]["disk_bytes_per_memory_by_part"]
    assert {"log.input", "log.embedded", "log.linked", "projections"} <= set(parts)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = mnemo(tmp_path, "bench", "ingest", "--ingest-memories", "20")
    assert text.returncode == 0 and "20 memories in" in text.stdout, text.stderr


def test_eval_locomo_smoke(tmp_path: Path) -> None:
    """`mnemo eval locomo FILE --json --k`: recall@k per system and category, MRR, and the
    rank of every question, for comparing versions."""
    from tests.pipeline.test_evaluate import _tiny

    report = ok_json(tmp_path, "eval", "locomo", str(_tiny(tmp_path / "t.json")), "--k", "1,3")
    assert set(report) >= {"mnemoflow", "bm25", "cosine"}
    ours = report["mnemoflow"]
    assert set(ours["recall"]) == {"@1", "@3"} and 0 < ours["mrr"] <= 1
    assert len(ours["per_question"]) == 3  # the adversarial question is left out
    assert all("ranks" in q for q in ours["per_question"])
    printed = mnemo(tmp_path, "eval", "locomo", str(tmp_path / "t.json"), "--k", "1")
    assert printed.returncode == 0 and "bm25" in printed.stdout
    # The --home given is where the conversation was stored, kept for a look (or a rerun).
    listed = mnemo(tmp_path, "list", "--ns", "tiny-1", "--json")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 4, listed.stderr


def test_recall_explain_shows_state_and_provenance(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok_json(home, "store", "Alice: I live in Paris.", "--ns", "a")
    ok_json(home, "store", "Alice: I moved to Berlin.", "--ns", "a")
    process = mnemo(home, "recall", "Paris", "--ns", "a", "--explain")
    assert process.returncode == 0, process.stderr
    assert "superseded_by" in process.stdout and "memory.stored@input:1" in process.stdout
    assert "zone archived" in process.stdout
    health = mnemo(home, "recall", "Paris", "--ns", "a", "--category", "health", "--json")
    assert health.returncode == 0 and json.loads(health.stdout) == []


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mnemoflow.pipeline.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_global_options_go_before_or_after_the_command(tmp_path: Path) -> None:
    """`mnemo --home DIR stats` was refused ("invalid choice"); `--version` did not exist."""
    home = str(tmp_path / "h")
    assert _run("store", "Ann likes figs.", "--ns", "ann", "--home", home).returncode == 0
    before = _run("--home", home, "--json", "list", "--ns", "ann")
    assert before.returncode == 0, before.stderr
    assert [json.loads(line)["text"] for line in before.stdout.splitlines()] == ["Ann likes figs."]
    mixed = _run("--home", str(tmp_path / "elsewhere"), "list", "--ns", "ann", "--home", home)
    assert "Ann likes figs." in mixed.stdout  # after the command wins, as it is said last
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.split()[0] == "mnemo"
    assert version.stdout.split()[1][0].isdigit()


def test_a_one_shot_command_logs_warnings_only_unless_asked(tmp_path: Path) -> None:
    """A terminal user sees the answer, not the pipeline's info lines (recall printed 7)."""
    home = tmp_path / "h"
    for verbose in ([], ["--verbose"]):  # each recall has a new memory to derive and fold
        mnemo(home, "store", f"Bea keeps bees{' and wasps' if verbose else ''}.", "--ns", "bea")
        process = mnemo(home, "recall", "bees", "--ns", "bea", *verbose)
        assert process.returncode == 0 and "Bea keeps bees" in process.stdout
        assert ("actor.batch" in process.stderr) == bool(verbose), process.stderr
    assert mnemo(home, "recall", "bees", "--ns", "bea").stderr == ""


def test_mem0_words_are_aliases(tmp_path: Path) -> None:
    """People coming from mem0 type `add` and `search`."""
    home = tmp_path / "h"
    added = ok_json(home, "add", "Cy plays the oboe.", "--ns", "cy")
    (hit,) = ok_json(home, "search", "oboe", "--ns", "cy", "-k", "1")
    assert hit["memory_id"] == added["memory_id"]


@pytest.mark.parametrize(
    ("missing", "options", "words"),
    [("matplotlib", ("--plot", "x.png"), "--plot"), ("psutil", (), "peak memory")],
)
def test_bench_without_its_extra_says_which_to_install(
    tmp_path: Path, missing: str, options: tuple[str, ...], words: str
) -> None:
    """The main job does not install the benchmarks' psutil and matplotlib: `mnemo bench`
    without them names the extra at once, before any measuring (no home is made)."""
    blocked = f"import sys; sys.modules[{missing!r}] = None"  # `import` of it fails
    run = f"{blocked}; from mnemoflow.pipeline.cli.main import main; sys.exit(main())"
    home = tmp_path / "home"
    process = subprocess.run(
        [sys.executable, "-c", run, "bench", "--home", str(home), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 1, process.stderr
    assert words in process.stderr and "pip install 'mnemoflow[bench]'" in process.stderr
    assert not home.exists()


def columns_line_up(lines: list[str]) -> None:
    """Every row of a table puts each column under its header: text starts where the
    header's word starts, a number ends where it ends."""
    header, *rows = lines
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    assert rows, lines
    for row in rows:
        padded = row.ljust(len(header) + 1)
        for start, end in spans[1:]:
            left = padded[start - 1] == " " and padded[start] != " "
            right = padded[end - 1] != " " and padded[end] == " "
            assert left or right, (header, row)


def test_stats_and_audit_print_aligned_tables(tmp_path: Path) -> None:
    """`mnemo stats` and `mnemo audit` line their columns up under headers (streams of
    different name lengths, positions of different widths pushed the columns apart)."""
    for i in range(12):
        receipt = ok_json(tmp_path, "store", f"Ana note number {i}.", "--ns", "ana")
    assert mnemo(tmp_path, "recall", "note", "--ns", "ana").returncode == 0
    stats = mnemo(tmp_path, "stats")
    assert stats.returncode == 0, stats.stderr
    tables = [t.splitlines() for t in stats.stdout.strip().split("\n\n")]
    assert [t[0].split()[0] for t in tables] == [
        "stream",
        "actor",
        "projection",
        "memories",
        "disk",
    ]
    for lines in tables:
        columns_line_up(lines)
    audit = mnemo(tmp_path, "audit", receipt["memory_id"])
    assert audit.returncode == 0, audit.stderr
    lines = audit.stdout.splitlines()
    assert lines[0].split()[:3] == ["recorded", "event", "kind"] and len(lines) >= 5
    columns_line_up(lines)


def test_a_one_shot_recall_loads_neither_pandas_nor_httpx(tmp_path: Path) -> None:
    """A cold `mnemo recall` on a home with no server imports what it uses: pyarrow's first
    array no longer pulls pandas in (~0.3 s), and httpx waits until a server is found. The
    model loads on a thread while the stores open, and that thread is done at exit."""
    assert mnemo(tmp_path, "store", "Ana's cat is called Miso.", "--ns", "ana").returncode == 0
    code = (
        "import sys, threading\n"
        "from mnemoflow.pipeline.cli.main import main\n"
        f"code = main(['recall', 'cat', '--ns', 'ana', '--home', {str(tmp_path)!r}])\n"
        "print(code, 'pandas' in sys.modules, 'httpx' in sys.modules,"
        " [t.name for t in threading.enumerate() if t.name == 'mnemo-model-preload'])\n"
    )
    said = python_says(code)
    assert "Miso" in said
    assert said.splitlines()[-1] == "0 False False []"


def test_pyarrow_still_converts_pandas_after_a_one_shot_command() -> None:
    """Refusing pandas to pyarrow's first look does not take pandas away: it imports, and
    tables still convert to and from it."""
    code = (
        "import pyarrow as pa\n"
        "from mnemoflow.pipeline.cli.common import arrow_without_pandas\n"
        "arrow_without_pandas()\n"
        "import sys; assert 'pandas' not in sys.modules\n"
        "import pandas as pd\n"
        "frame = pa.table({'a': [1, 2]}).to_pandas()\n"
        "print(list(frame['a']), pa.Table.from_pandas(pd.DataFrame({'b': [3]})).num_rows)\n"
    )
    assert python_says(code).strip() == "[1, 2] 1"


def test_bench_cold_smoke(tmp_path: Path) -> None:
    """`mnemo bench cold` starts real processes and reports each kind's figures."""
    result = ok_json(tmp_path, "bench", "cold", "--runs", "1")["cold_recall"]
    assert result["runs"] == 1 and result["memories"] == 20
    for kind in ("recall", "import_cli", "interpreter"):
        assert result[kind]["median_s"] > 0 and result[kind]["peak_rss_bytes"] > 0
    # a recall does more than an import: its model alone is over a hundred MiB
    assert result["recall"]["peak_rss_bytes"] > result["import_cli"]["peak_rss_bytes"]


def test_a_reader_that_stops_early_is_no_error(tmp_path: Path) -> None:
    """`mnemo export | head -1`: the reader closes the pipe after a line; mnemo stops quietly
    with 141 (a write to a closed pipe), as a shell tool killed by SIGPIPE would."""
    from mnemoflow import Memory

    home = tmp_path / "h"
    with Memory.open(home) as mem:  # more than a pipe holds (64 KiB)
        for i in range(100):
            mem.store(f"memory {i}: " + "words " * 200, "a")
    child = subprocess.Popen(
        [sys.executable, "-m", "mnemoflow.pipeline.cli", "export", "--home", str(home)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    assert json.loads(child.stdout.readline())["format"] == "mnemoflow.export"
    child.stdout.close()
    with child.stderr:
        errors = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141
    assert errors == ""
