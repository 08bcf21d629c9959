"""The dashboard in a real browser (Playwright for Python driving Debian's chromium): the
runs list shows a run started by the CLI in another process, its phase Gantt advances live
(server-sent events, no reload) while the run progresses, a failing gate's reasons are shown,
and screenshots at laptop and phone widths are saved for a person to look at."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.serving import cli_env, serving, start_cli, stop
from tests.support.configs import SPEC_DAG, write_callable_pipeline

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    """Where the screenshots go: $IDEAMINE_SCREENSHOTS, else a fresh temporary folder."""
    folder = Path(os.environ.get("IDEAMINE_SCREENSHOTS") or tempfile.mkdtemp(prefix="ideamine-ui-"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _bars(page: object, status: str) -> int:
    return int(page.locator(f"#gantt .g-bar.{status}").count())  # type: ignore[attr-defined]


def test_live_gantt_of_a_cli_run_with_screenshots(
    tmp_path: Path, browser: object, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_callable_pipeline(tmp_path / "config", SPEC_DAG, agents_per_phase=2)
    env = cli_env({"IDEAMINE_TEST_SLEEP": "0.35"})
    with serving(tmp_path) as server:
        laptop = browser.new_page(viewport=LAPTOP)  # type: ignore[attr-defined]
        laptop.goto(f"{server.url}/dashboard/")
        laptop.wait_for_selector("text=No runs yet")
        cli = start_cli("run", "-q", "--config", str(config), IDEA, cwd=tmp_path, env=env)
        try:
            row = laptop.wait_for_selector("tr[data-run]", timeout=20_000)  # no reload: polled
            run_id = row.get_attribute("data-run")
            assert laptop.locator(f"tr[data-run='{run_id}'] .badge").inner_text() in (
                "running",
                "created",
            )
            laptop.screenshot(path=str(shots / "runs-laptop.png"), full_page=True)

            laptop.goto(f"{server.url}/dashboard/runs/{run_id}")
            start = _bars(laptop, "passed")
            assert start < 10
            laptop.wait_for_function(
                f"document.querySelectorAll('#gantt .g-bar.passed').length >= {start + 3}",
                timeout=30_000,
            )
            assert laptop.locator("#last-event").inner_text().startswith("#")
            laptop.screenshot(path=str(shots / "run-live-laptop.png"), full_page=True)
            laptop.wait_for_selector("[data-live='false']", timeout=60_000)
            assert cli.wait(timeout=60) == 0
        finally:
            stop(cli)
        assert _bars(laptop, "passed") == 13
        # The stream's "end" note and the page's last refresh arrive in either order.
        laptop.wait_for_function(
            "document.getElementById('last-event').textContent.includes('run finished')",
            timeout=15_000,
        )
        assert laptop.locator("#gates").inner_text().count("not judged") == 13
        assert "No gate has judged this run yet" in laptop.locator("#gates").inner_text()
        laptop.screenshot(path=str(shots / "run-done-laptop.png"), full_page=True)

        phone = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        phone.goto(f"{server.url}/dashboard/runs/{run_id}")
        phone.screenshot(path=str(shots / "run-phone.png"), full_page=True)
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        phone.goto(f"{server.url}/dashboard/")
        phone.screenshot(path=str(shots / "runs-phone.png"), full_page=True)
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    with capsys.disabled():
        print(f"\ndashboard screenshots: {shots}")


def test_failing_gate_reasons_and_offline_run_pages(
    tmp_path: Path, browser: object, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gate verdict row, as the quality loop (not built yet) will write it, is shown with
    its failing rubrics and reasons; the run's artifacts, assumptions and dossier links too."""
    done = start_cli("run", "-q", IDEA, cwd=tmp_path, env=cli_env())
    assert done.wait(timeout=120) == 0
    stop(done)
    db = tmp_path / "ideamine.db"
    with sqlite3.connect(db) as connection:
        (run_id,) = connection.execute("SELECT id FROM runs").fetchone()
        connection.execute(
            "INSERT INTO gate_evaluations VALUES ('g1', ?, 'prd', 1, 0, 0.62, 0.8, ?, "
            "'2026-01-01T00:00:00+00:00')",
            (
                run_id,
                '{"rubrics": {"completeness": 0.9, "consistency": 0.41, "grounding": 0.7, '
                '"coverage": 0.85}, "reasons": ["contradictions: 2 found, max 0"], '
                '"issues": [{"type": "contradictions", "severity": "high", '
                '"description": "US-3 contradicts NFR-2"}]}',
            ),
        )
    with serving(tmp_path) as server:
        page = browser.new_page(viewport=LAPTOP)  # type: ignore[attr-defined]
        page.goto(f"{server.url}/dashboard/runs/{run_id}")
        prd = page.locator("#gates tr[data-phase='prd']")
        assert "failed" in prd.inner_text() and "0.62 / 0.80" in prd.inner_text()
        assert "contradictions: 2 found, max 0" in prd.inner_text()
        assert "US-3 contradicts NFR-2" in prd.inner_text()
        failing = prd.locator(".rubric.failing").all_inner_texts()
        assert [t.split()[0] for t in failing] == ["consistency", "grounding"]
        prd.scroll_into_view_if_needed()
        page.locator("#gates").screenshot(path=str(shots / "gate-failing-laptop.png"))
        assert page.locator("#assumptions li").count() >= 5
        assert page.locator("#dossier a").count() == 4
        page.locator("#artifacts a", has_text="IdeaSpec").click()
        page.wait_for_selector("pre.json")
        assert "target_users" in page.locator("pre.json").first.inner_text()
        page.screenshot(path=str(shots / "artifact-laptop.png"), full_page=True)
        page.goto(f"{server.url}/dashboard/runs/{run_id}")
        page.locator("#dossier a", has_text="HTML").click()
        page.wait_for_load_state()
        assert run_id in page.content()
    with capsys.disabled():
        print(f"\ndashboard screenshots: {shots}")
