"""SPEC §10 criterion 7: metrics and ``phase_metrics`` rows update as phases run, and the
dashboard shows them live.

A real ``ideamine serve`` and, in another process, ``ideamine run`` of the SPEC's 13-phase DAG
(two sleeping agents a phase, about 8 s). While the run goes on, each sample scrapes
``/metrics`` and reads the run's dashboard page in Chromium (opened once, never reloaded),
between two reads of the store: what the server reports can be neither behind the rows
committed before the sample nor ahead of those committed after it."""

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


def test_criterion_7_metrics_and_phase_metrics_update_as_phases_run_and_the_dashboard_shows_them(
    tmp_path: Path,
) -> None:
    config = write_callable_pipeline(tmp_path / "config", SPEC_DAG, agents_per_phase=2)
    db = tmp_path / "ideamine.db"
    samples: list[tuple[tuple[int, int], int, int, tuple[int, int]]] = []
    with chromium() as browser, serving(tmp_path) as server, server.client() as client:
        cli = start_cli("run", "-q", "--config", str(config), IDEA, cwd=tmp_path, env=SLOW)
        try:
            page = _open_run_page(browser, server.url, client)
            while cli.poll() is None:
                before = _stored(db)
                measured = _phases_measured(client.get("/metrics").text)
                shown = _shown_passed(page)
                samples.append((before, measured, shown, _stored(db)))
                time.sleep(0.2)
            assert cli.returncode == 0
        finally:
            stop(cli)
        final = client.get("/metrics").text
        page.wait_for_function(
            f"document.querySelectorAll('#gantt .g-bar.passed').length === {PHASES}",
            timeout=30_000,
        )
        assert page.evaluate("window.openedOnce === true"), "the page reloaded"
        assert page.get_attribute("[data-live]", "data-live") == "false"

    for (rows_before, _), measured, _, (rows_after, _) in samples:
        assert rows_before <= measured <= rows_after, samples
    for _, _, shown, (_, passed_after) in samples:
        assert shown <= passed_after, samples
    # both moved while the run went on, through several values each, not only at its end
    assert len({measured for _, measured, _, _ in samples if 0 < measured < PHASES}) >= 4
    assert len({shown for _, _, shown, _ in samples if 0 < shown < PHASES}) >= 4
    assert _stored(db) == (PHASES, PHASES)
    assert _phases_measured(final) == PHASES
    assert 'ideamine_phases_completed_total{phase="beta"} 1.0' in final
    assert 'ideamine_runs{status="completed"} 1.0' in final
