"""The dashboard in a real browser (Debian's Chromium, headless, driven by Playwright) against a
real `mnemo serve` with API keys: signing in, search with channel bars, a memory's versions,
decay and provenance, the graph, the timeline, episodes and patterns, health, actions, a
scoped key's reach, CSRF, and an erasure gone from every view. The main views' screenshots in
the README are taken here (`docs/ui/`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from mnemoflow import Memory
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.bench.suite import served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
# As root, in a closed network: no sandbox, and nothing that phones home (see the env notes).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`mnemo serve` over a home with alice's and bob's memories and episodes; its URL, keys
    for an admin and for alice, and some ids."""
    home = tmp_path_factory.mktemp("ui") / "home"
    with Memory.open(home) as mem:
        moved = str(mem.store("Alice moved to Lyon in May", "alice").memory_id)
        mem.update(moved, "Alice moved to Paris in June")
        mem.feedback(moved, useful=True)
        mem.store("Alice works in Paris as a nurse", "alice")
        mem.store("Alice adopted a cat named Miso", "alice")
        bob = str(mem.store("Bob keeps bees on a roof in Oslo", "bob").memory_id)
        for i in range(3):
            run = str(mem.episodes.start(f"deploy the billing service {i}", "alice").memory_id)
            steps = [{"tool": "git", "action": "pull"}, {"tool": "kubectl", "action": "apply"}]
            mem.episodes.step_many(run, steps)
            mem.episodes.complete(run, True)
        mem.guards.add("Never drop the production database", "alice", "block")
        mem.guards.check("drop the production database now", "alice", asked_by="ops-bot")
        mem.sync()
    keys = KeyStore(home / "keys.json")
    admin, _ = keys.create([], admin=True)
    alice, _ = keys.create(["alice"])
    with served(home, open_access=False) as (url, _):
        yield {"url": url, "admin": admin, "alice": alice, "moved": moved, "bob": bob}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


def _signed_in(browser: Browser, site: dict[str, str], key: str) -> Page:
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    page.goto(site["url"] + "/ui")
    expect(page).to_have_url(site["url"] + "/ui/login")  # signed out: asked to sign in
    page.fill("input[name=key]", key)
    page.click("#login button")
    page.wait_for_url(site["url"] + "/ui")
    return page


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_search_shows_the_memory_with_its_channel_bars(
    browser: Browser, site: dict[str, str]
) -> None:
    page = _signed_in(browser, site, site["alice"])
    expect(page.locator("table.namespaces")).to_contain_text("alice")
    expect(page.locator("table.namespaces")).not_to_contain_text("bob")  # alice's key
    _shot(page, "namespaces")
    page.click("text=alice")
    page.fill("input[name=q]", "Where does Alice live now?")
    page.click(".search button")
    first = page.locator("li.hit").first
    expect(first).to_contain_text("Alice moved to Paris in June")
    channels = first.locator(".bar").evaluate_all("bars => bars.map(b => b.dataset.channel)")
    assert {"lexical", "semantic"} <= set(channels)
    widths = first.locator(".bar .fill").evaluate_all("fills => fills.map(f => f.style.width)")
    assert any(w != "0.0%" for w in widths)
    _shot(page, "search")


def test_a_memory_shows_its_versions_decay_and_provenance(
    browser: Browser, site: dict[str, str]
) -> None:
    page = _signed_in(browser, site, site["alice"])
    page.goto(f"{site['url']}/ui/memory/{site['moved']}")
    versions = page.locator("table.versions tbody tr")
    expect(versions).to_have_count(2)
    assert versions.nth(1).locator("del").all_inner_texts() == ["Lyon", "May"]
    assert versions.nth(1).locator("ins").all_inner_texts() == ["Paris", "June"]
    streams = page.locator("table.provenance tbody td:first-child").all_inner_texts()
    assert {"input", "extracted", "embedded", "linked", "decay"} <= set(streams)
    expect(page.locator("#decay-chart canvas")).to_have_count(1)  # uPlot drew the curve
    _shot(page, "memory")


def test_the_graph_renders_nodes_and_edges_and_expands(
    browser: Browser, site: dict[str, str]
) -> None:
    page = _signed_in(browser, site, site["alice"])
    page.goto(f"{site['url']}/ui/memory/{site['moved']}/graph")
    page.wait_for_function("window.mnemoGraph && window.mnemoGraph.nodes().length > 1")
    nodes = page.evaluate("window.mnemoGraph.nodes().length")
    edges = page.evaluate("window.mnemoGraph.edges().length")
    assert nodes >= 2 and edges >= 1
    kinds = page.evaluate("window.mnemoGraph.nodes().map(n => n.data('kind'))")
    assert "memory" in kinds and "entity" in kinds
    _shot(page, "graph")


def test_timeline_episodes_and_health(browser: Browser, site: dict[str, str]) -> None:
    page = _signed_in(browser, site, site["admin"])
    page.goto(f"{site['url']}/ui/ns/alice/timeline")
    expect(page.locator("#timeline-chart canvas")).to_have_count(1)
    expect(page.locator("table.timeline")).to_contain_text("memory.updated")
    page.goto(f"{site['url']}/ui/ns/alice/episodes")
    expect(page.locator("table.episodes tbody tr")).to_have_count(3)
    expect(page.locator("table.patterns")).to_contain_text("git:pull → kubectl:apply")
    page.click("table.episodes tbody tr:first-child a")  # an episode's own page
    expect(page.locator("table.steps tbody tr")).to_have_count(2)
    expect(page.locator("table.steps")).to_contain_text("kubectl")
    expect(page.locator("table.patterns")).to_contain_text("tool_sequence")
    page.go_back()
    expect(page.locator("table.guards")).to_contain_text("Never drop the production database")
    expect(page.locator("table.decisions")).to_contain_text("block")
    expect(page.locator("table.decisions")).to_contain_text("ops-bot")
    page.goto(f"{site['url']}/ui/health")
    expect(page.locator("table.actors")).to_contain_text("embedder")
    expect(page.locator("#health-chart canvas")).to_have_count(1)
    page.click("#verify")
    expect(page.locator("#verified")).to_contain_text("every chain whole")
    with page.expect_response("**/ui/api/health"):  # polled: the chart grows
        pass
    _shot(page, "health")


def test_a_scoped_key_cannot_see_another_namespace(browser: Browser, site: dict[str, str]) -> None:
    page = _signed_in(browser, site, site["alice"])
    for path in ("/ui/ns/bob", f"/ui/memory/{site['bob']}", "/ui/health"):
        response = page.goto(site["url"] + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("body")).not_to_contain_text("bees")
    denied = page.evaluate("async (id) => (await fetch('/ui/api/graph/' + id)).status", site["bob"])
    assert denied == 403


def test_actions_need_the_pages_token_and_an_erasure_leaves_every_view(
    browser: Browser, site: dict[str, str]
) -> None:
    page = _signed_in(browser, site, site["admin"])
    page.goto(site["url"] + "/ui/ns/bob")
    forged = page.evaluate(
        "async () => (await fetch('/ui/api/erase', {method: 'POST', body: "
        "JSON.stringify({namespace: 'bob', confirm: 'bob'}), "
        "headers: {'content-type': 'application/json'}})).status"
    )
    assert forged == 403  # no CSRF token: refused, nothing erased
    page.fill("#store textarea", "Bob sells honey at the market")
    page.click("#store button")
    expect(page.locator("#action-result")).to_contain_text("Stored")
    page.fill("#erase input[name=confirm]", "bo")  # the name mistyped: refused
    page.click("#erase button")
    expect(page.locator("#action-result")).to_contain_text("type the namespace")
    page.fill("#erase input[name=confirm]", "bob")
    page.click("#erase button")
    page.wait_for_url(site["url"] + "/ui")
    expect(page.locator("body")).not_to_contain_text("bob")
    for path in ("/ui/ns/bob", f"/ui/memory/{site['bob']}", "/ui/ns/bob/timeline"):
        response = page.goto(site["url"] + path)
        assert response is not None and response.status == 404, path
        expect(page.locator("body")).not_to_contain_text("bees")
    api = httpx.get(
        f"{site['url']}/namespaces/bob/memories",
        headers={"Authorization": f"Bearer {site['admin']}"},
    )
    assert api.status_code in (200, 404) and "bees" not in api.text and "honey" not in api.text
