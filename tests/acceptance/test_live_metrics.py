"""SPEC §10 criterion 7: metrics and ``phase_metrics`` rows update as phases run, and the
dashboard shows them live.

A real ``ideamine serve`` and, in another process, ``ideamine run`` of the SPEC's 13-phase DAG
(two sleeping agents a phase, about 8 s). While the run goes on, one test scrapes
``/metrics`` between two reads of the store: what it reports can be neither behind the rows
committed before the scrape nor ahead of those committed after it. The other reads the run's
dashboard page in Chromium, opened once and never reloaded: the phases it shows passed move
on with the run's, never ahead of the store's."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.serving import cli_env, serving, start_cli, stop, wait_until
from tests.support.browser import chromium
from tests.support.configs import SPEC_DAG, write_callable_pipeline

pytestmark = pytest.mark.timeout(300)

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
SLOW = cli_env({"IDEAMINE_TEST_SLEEP": "0.35"})
PHASES = len(SPEC_DAG)


def _stored(db: Path) -> tuple[int, int]:
    """(``phase_metrics`` rows, phases passed) committed in the store now."""
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db) as connection:
        (rows,) = connection.execute("SELECT COUNT(*) FROM phase_metrics").fetchone()
        (passed,) = connection.execute(
            "SELECT COUNT(*) FROM phases WHERE status = 'passed'"
        ).fetchone()
    return int(rows), int(passed)


def _phases_measured(metrics: str) -> int:
    """How many phases ``/metrics`` reports measured (its phase-duration histogram's count)."""
    return round(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("ideamine_phase_duration_seconds_count{")
        )
    )


def _shown_passed(page: Any) -> int:
    """Phases the open dashboard page shows passed (bars of its phase Gantt)."""
    return int(page.locator("#gantt .g-bar.passed").count())


def _open_run_page(browser: Any, url: str, client: httpx.Client) -> Any:
    """The dashboard page of the first run the server lists, marked so a reload would show."""
    found: list[str] = []

    def listed() -> bool:
        found[:] = [str(run["id"]) for run in client.get("/runs").json()]
        return bool(found)

    wait_until(listed, timeout=30, what="the CLI's run to be listed")
    page = browser.new_page()
    page.goto(f"{url}/dashboard/runs/{found[0]}")
    page.evaluate("window.openedOnce = true")  # gone if the page ever reloads
    return page


def _start_run(folder: Path) -> Any:
    """``ideamine run`` of the slow 13-phase pipeline in another process, in ``folder``."""
    config = write_callable_pipeline(folder / "config", SPEC_DAG, agents_per_phase=2)
    return start_cli("run", "-q", "--config", str(config), IDEA, cwd=folder, env=SLOW)


def _moved(values: list[int]) -> int:
    """How many values strictly between none and all phases ``values`` went through."""
    return len({value for value in values if 0 < value < PHASES})


def test_criterion_7_metrics_and_phase_metrics_update_as_phases_run(tmp_path: Path) -> None:
    db = tmp_path / "ideamine.db"
    samples: list[tuple[int, int, int]] = []
    with serving(tmp_path) as server, server.client() as client:
        cli = _start_run(tmp_path)
        try:
            while cli.poll() is None:
                before, _ = _stored(db)
                measured = _phases_measured(client.get("/metrics").text)
                after, _ = _stored(db)
                samples.append((before, measured, after))
                time.sleep(0.2)
            assert cli.returncode == 0
        finally:
            stop(cli)
        final = client.get("/metrics").text
    for before, measured, after in samples:
        assert before <= measured <= after, samples
    assert _moved([measured for _, measured, _ in samples]) >= 4, samples
    assert _stored(db) == (PHASES, PHASES)
    assert _phases_measured(final) == PHASES
    assert 'ideamine_phases_completed_total{phase="beta"} 1.0' in final
    assert 'ideamine_runs{status="completed"} 1.0' in final


def test_criterion_7_the_dashboard_shows_the_phases_live(tmp_path: Path) -> None:
    db = tmp_path / "ideamine.db"
    samples: list[tuple[int, int]] = []
    with chromium() as browser, serving(tmp_path) as server, server.client() as client:
        cli = _start_run(tmp_path)
        try:
            page = _open_run_page(browser, server.url, client)
            while cli.poll() is None:
                shown = _shown_passed(page)
                samples.append((shown, _stored(db)[1]))
                time.sleep(0.2)
            assert cli.returncode == 0
        finally:
            stop(cli)
        page.wait_for_selector("[data-live='false']", timeout=30_000)
        assert _shown_passed(page) == PHASES
        assert page.evaluate("window.openedOnce === true"), "the page reloaded"
    for shown, passed_after in samples:
        assert shown <= passed_after, samples
    assert _moved([shown for shown, _ in samples]) >= 4, samples
