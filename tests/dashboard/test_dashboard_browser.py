"""The dashboard in a real browser (Playwright for Python driving Debian's chromium) over a
real ``ideamine serve`` and real CLI runs: the runs list shows a run started by the CLI in
another process and its phase Gantt advances live (server-sent events, no reload); a completed
offline run shows its Q/A/V coverage per phase (the same numbers as the store's questions and
the gate verdicts' Q/A/V summaries) and the assumptions it went on with; a run whose gate
failed shows the gate's reasons and is waived from the page; a gate that failed on a secret is
refused with the API's message; a run started with ``--ask`` is answered from the page, one
question at a time, and goes on. Screenshots at laptop and phone widths are saved for a
person to look at."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.api.serving import Server, cli_env, ideamine, serving, start_cli, stop
from tests.api.test_api_quality import cli_run, failing_gate_pipeline
from tests.support.browser import chromium
from tests.support.configs import SPEC_DAG, write_callable_pipeline

pytestmark = pytest.mark.timeout(600)  # the module's offline run takes minutes on a busy box

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where the screenshots go: $IDEAMINE_SCREENSHOTS, else a fresh temporary folder."""
    folder = Path(os.environ.get("IDEAMINE_SCREENSHOTS") or tempfile.mkdtemp(prefix="ideamine-ui-"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"dashboard screenshots: {folder}")


@dataclass
class Runs:
    server: Server
    done: str  # the offline pipeline, completed
    failed: str  # prd's gate failed (waivable)
    secret: str  # security's gate failed on a secret (never waivable)
    asked: str  # started with --ask: open questions


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Runs]:
    """One store: a completed offline run and three runs that need attention."""
    cwd = tmp_path_factory.mktemp("dashboard")
    offline = start_cli("run", "-q", IDEA, cwd=cwd, env=cli_env())
    try:
        failed = cli_run(cwd, "--config", str(failing_gate_pipeline(cwd / "failing")))
        secret = cli_run(cwd, "--config", str(failing_gate_pipeline(cwd / "secret", secret=True)))
        asked = cli_run(cwd, "--ask")
        assert offline.wait(timeout=420) == 0
    finally:
        stop(offline)
    listed = json.loads(ideamine("runs", "--json", cwd=cwd).stdout)
    (done,) = [r["id"] for r in listed if r["status"] == "completed"]
    with serving(cwd) as server:
        yield Runs(server=server, done=done, failed=failed, secret=secret, asked=asked)


def _get(runs: Runs, path: str) -> Any:
    with runs.server.client() as client:
        reply = client.get(path)
        assert reply.status_code == 200, reply.text
        return reply.json()


def _bars(page: Any, status: str) -> int:
    return int(page.locator(f"#gantt .g-bar.{status}").count())


def _settled(page: Any) -> None:
    """Wait until a finished run's stream has ended and the page's last refresh is in."""
    page.wait_for_function(
        "document.getElementById('last-event').textContent.includes('run finished')"
    )
    page.wait_for_load_state("networkidle")


def _fits(page: Any, viewport: dict[str, int]) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def test_live_gantt_of_a_cli_run_with_screenshots(
    tmp_path: Path, browser: Any, shots: Path
) -> None:
    config = write_callable_pipeline(tmp_path / "config", SPEC_DAG, agents_per_phase=2)
    env = cli_env({"IDEAMINE_TEST_SLEEP": "0.35"})
    with serving(tmp_path) as server:
        laptop = browser.new_page(viewport=LAPTOP)
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
        # every phase was judged: its one rubric, grounding, is a gap (Q/A/V is off here)
        assert laptop.locator("#gates tr[data-state='passed']").count() == 13
        assert laptop.locator("#gates .rubric.gap").count() == 13
        assert "Q/A/V is off for every phase" in laptop.locator("#qav").inner_text()
        assert laptop.locator("#attention .attention").count() == 0
        laptop.screenshot(path=str(shots / "run-done-laptop.png"), full_page=True)

        phone = browser.new_page(viewport=PHONE)
        phone.goto(f"{server.url}/dashboard/runs/{run_id}")
        phone.screenshot(path=str(shots / "run-phone.png"), full_page=True)
        _fits(phone, PHONE)
        phone.goto(f"{server.url}/dashboard/")
        phone.screenshot(path=str(shots / "runs-phone.png"), full_page=True)
        _fits(phone, PHONE)


def _cell(page: Any, phase: str, column: str) -> str:
    return str(page.locator(f"#qav tr[data-phase='{phase}'] td[data-col='{column}']").inner_text())


def test_a_completed_run_shows_qav_coverage_per_phase_and_its_assumptions(
    runs: Runs, browser: Any, shots: Path
) -> None:
    found = _get(runs, f"/runs/{runs.done}/questions")
    asked = Counter(q["phase"] for q in found["questions"])
    accepted = Counter(q["phase"] for q in found["questions"] if q["status"] == "accepted")
    summaries: dict[str, Counter[str]] = {}
    graded: Counter[str] = Counter()  # answered × mean grounding, summed over the verdicts
    for gate in _get(runs, f"/runs/{runs.done}/gates")["gates"]:
        qav = gate["result"]["evidence"]["qav"] or {}
        summaries.setdefault(gate["phase"], Counter()).update(
            {k: qav.get(k, 0) for k in ("questions", "accepted", "unknown", "answered")}
        )
        graded[gate["phase"]] += qav.get("answered", 0) * qav.get("mean_grounding", 0)
    assert sum(asked.values()) > 10 and len(summaries) == 13

    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{runs.server.url}/dashboard/runs/{runs.done}")
    _settled(page)
    for phase, summary in summaries.items():
        assert int(_cell(page, phase, "asked")) == asked[phase] == summary["questions"], phase
        assert int(_cell(page, phase, "accepted")) == accepted[phase] == summary["accepted"]
        assert int(_cell(page, phase, "unknown")) == summary["unknown"], phase
        grounding = _cell(page, phase, "grounding").split()[0]
        answered = summary["answered"]
        assert grounding == (f"{graded[phase] / answered:.2f}" if answered else "–"), phase
    assert int(_cell(page, "total", "asked")) == len(found["questions"])
    assert page.locator("#gates tr[data-state='passed']").count() == 13
    assert page.locator("#attention .attention").count() == 0

    assert page.locator("#assumptions li").count() >= 5  # stated at intake
    groups = page.locator("#qav-assumptions details.phase-group")
    shown = sum(int(g.locator(".count").inner_text()) for g in groups.all())
    assert shown == len(found["assumptions"]) > 0
    groups.first.locator("summary").click()
    assert groups.first.locator("li").first.is_visible()
    page.locator("#qav").screenshot(path=str(shots / "qav-laptop.png"))
    page.screenshot(path=str(shots / "run-offline-laptop.png"), full_page=True)

    page.locator("#artifacts a", has_text="IdeaSpec").click()
    page.wait_for_selector("pre.json")
    assert "target_users" in page.locator("pre.json").first.inner_text()
    page.goto(f"{runs.server.url}/dashboard/runs/{runs.done}")
    assert page.locator("#dossier a").count() == 4

    phone = browser.new_page(viewport=PHONE)
    phone.goto(f"{runs.server.url}/dashboard/runs/{runs.done}")
    _settled(phone)
    phone.screenshot(path=str(shots / "run-offline-phone.png"), full_page=True)
    _fits(phone, PHONE)


def test_a_failed_gate_shows_its_reasons_and_is_waived_from_the_page(
    runs: Runs, browser: Any, shots: Path
) -> None:
    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{runs.server.url}/dashboard/runs/{runs.failed}")
    prd = page.locator("#gates tr[data-phase='prd']")
    assert prd.get_attribute("data-state") == "failed"
    assert "0.83 / 0.90" in prd.inner_text()
    assert "NFRs.nfrs has 2 nfrs, fewer than 3" in prd.inner_text()
    assert [t.split()[0] for t in prd.locator(".rubric.failing").all_inner_texts()] == ["coverage"]
    card = page.locator("#attention .attention")
    assert "gate failed 1 of 1 attempts" in card.inner_text()
    assert card.locator(".waive[data-phase='prd']").count() == 1
    page.screenshot(path=str(shots / "gate-failing-laptop.png"), full_page=True)
    phone = browser.new_page(viewport=PHONE)
    phone.goto(f"{runs.server.url}/dashboard/runs/{runs.failed}")
    phone.locator("#attention").screenshot(path=str(shots / "gate-failing-phone.png"))
    _fits(phone, PHONE)

    form = card.locator("form[data-kind='waive']")
    form.locator("button[type='submit']").click()  # no justification: the browser refuses
    assert page.locator("#flash").is_hidden()
    form.locator("textarea").fill("accepted for the beta: NFRs follow in the next release")
    form.locator("input[type='date']").fill("2030-01-31")
    form.locator("button[type='submit']").click()
    page.wait_for_selector("#flash:not([hidden])")
    assert "Waived the gate of prd" in page.locator("#flash").inner_text()
    page.wait_for_selector("#gates tr[data-phase='prd'][data-state='waived']", timeout=20_000)
    page.wait_for_selector(".cards[data-status='completed']", timeout=60_000)
    waived = page.locator("#gates tr[data-phase='prd']").inner_text()
    assert "until 2030-01-31" in waived and "NFRs follow" in waived
    assert page.locator("#attention .attention").count() == 0
    page.screenshot(path=str(shots / "gate-waived-laptop.png"), full_page=True)


def test_a_gate_failed_on_a_secret_is_refused_with_the_apis_message(
    runs: Runs, browser: Any, shots: Path
) -> None:
    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{runs.server.url}/dashboard/runs/{runs.secret}")
    waive = page.locator("#attention .waive[data-phase='security']")
    assert "cannot be waived" in waive.locator(".note.blocked").inner_text()
    waive.locator("textarea").fill("we will rotate the key after the demo")
    waive.locator("button[type='submit']").click()
    error = waive.locator(".form-error")
    error.wait_for(state="visible")
    assert "can never be waived" in error.inner_text()
    assert "AWS access key" in error.inner_text() and "Traceback" not in page.content()
    assert page.locator("#flash").is_hidden()
    waive.screenshot(path=str(shots / "secret-refused-laptop.png"))
    assert _get(runs, f"/runs/{runs.secret}")["status"] == "needs_attention"


def test_open_questions_are_answered_from_the_page_and_the_run_goes_on(
    runs: Runs, browser: Any, shots: Path
) -> None:
    waiting = [
        q["id"]
        for q in _get(runs, f"/runs/{runs.asked}/questions")["questions"]
        if q["status"] == "open"
    ]
    assert len(waiting) >= 2, "the --ask run has fewer than 2 open questions"
    phone = browser.new_page(viewport=PHONE)
    phone.goto(f"{runs.server.url}/dashboard/runs/{runs.asked}")
    phone.locator("#attention").screenshot(path=str(shots / "questions-phone.png"))
    _fits(phone, PHONE)

    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{runs.server.url}/dashboard/runs/{runs.asked}")
    forms = page.locator("#attention form[data-kind='answer']")
    assert forms.count() == len(waiting)
    page.locator("#attention").screenshot(path=str(shots / "questions-laptop.png"))
    # typed ahead in the last form: it survives the refreshes that the first answers cause
    forms.last.locator("textarea").fill("typed ahead")
    for left in range(len(waiting) - 1, 0, -1):
        forms.first.locator("textarea").fill(f"answer with {left} left")
        forms.first.locator("button[type='submit']").click()
        page.wait_for_function(
            f"document.querySelectorAll(\"#attention form[data-kind='answer']\").length == {left}"
        )
        assert f"{left} question(s) still open" in page.locator("#flash").inner_text()
    assert forms.first.locator("textarea").input_value() == "typed ahead"
    forms.first.locator("button[type='submit']").click()
    page.wait_for_function(
        "document.getElementById('flash').textContent.includes('the run goes on')"
    )
    page.wait_for_selector("#gates tr[data-phase='intake'][data-state='passed']", timeout=60_000)
    for question in waiting:
        assert page.locator(f"#attention [data-question='{question}']").count() == 0
    answered = _get(runs, f"/runs/{runs.asked}/questions")
    people = {a["question_id"]: a["text"] for a in answered["answers"] if a["source"] == "person"}
    assert set(people) == set(waiting) and people[waiting[-1]] == "typed ahead"
    page.wait_for_function(  # the coverage counts the person's answers
        "document.querySelector(\"#qav tr[data-phase='intake'] td[data-col='open']\")"
        f".textContent.trim() == '0 · {len(waiting)}'"
    )
    page.screenshot(path=str(shots / "questions-answered-laptop.png"), full_page=True)
