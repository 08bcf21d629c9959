"""The story loop's reports, built only from what pytest recorded.

``acceptance_results`` turns one iteration's test run into an AcceptanceTestResults report
(one outcome per acceptance test the implementation listed); ``story_progress_of`` turns the
recorded reports of every iteration so far into that iteration's StoryProgress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["acceptance_results", "story_progress_of"]


def acceptance_results(
    implementation: Mapping[str, Any], tests: Mapping[str, Any], commit: str
) -> dict[str, object]:
    """The AcceptanceTestResults of one story from pytest's ``tests`` section.

    A listed test is ``passed`` only when the run was complete (no problem, nothing skipped,
    as many tests ran as were listed) and it is not among the failures; ``failed`` when it
    is; ``error`` when the run failed in a way no test name explains (a collection error);
    ``not_run`` when pytest gave no counts (time limit, could not start).
    """
    story_id = str(implementation.get("story_id", "?"))
    listed = [str(t.get("test_name")) for t in implementation.get("tests") or [] if t]
    failed_names = {str(f.get("name", "")).rsplit("::", 1)[-1] for f in tests["failures"]}
    total = tests["total"]
    complete = (
        total is not None
        and not tests.get("problem")
        and not tests.get("skipped")
        and total == len(listed)
    )
    unexplained = bool(failed_names - set(listed))
    rows = [
        {"story_id": story_id, "test": name, "outcome": _outcome(name, total, complete,
                                                                  failed_names, unexplained)}
        for name in listed
    ]  # fmt: skip
    passed = tests["passed"]
    failed = None if total is None else int(tests["failed"] or 0) + int(tests["errors"] or 0)
    return {
        "story_id": story_id,
        "stories": rows,
        "total": total,
        "passed": passed,
        "failed": failed,
        "pass_rate": round(passed / total, 4) if total else None,
        "commit": commit,
        "test_file": implementation.get("test_file"),
        "problem": tests.get("problem"),
        "evidence": tests["evidence"],
    }


def _outcome(
    name: str, total: int | None, complete: bool, failed: set[str], unexplained: bool
) -> str:
    if total is None:
        return "not_run"
    if name in failed:
        return "failed"
    if complete:
        return "passed"
    return "error" if unexplained or not total else "unknown"


def story_progress_of(
    *,
    stories: Sequence[Mapping[str, Any]],
    iteration: int,
    history: Sequence[Mapping[str, Any]],
    outputs: Mapping[str, Any],
) -> dict[str, object]:
    """This iteration's StoryProgress from its implementation and the recorded test results.

    A story is completed when its acceptance run executed and every one of its tests passed.
    """
    implementation = _find(outputs, "files_changed")
    results = _find(outputs, "pass_rate")
    earlier = [found for step in history if (found := _find(step, "pass_rate"))]
    story = stories[iteration - 1] if 0 < iteration <= len(stories) else {}
    story_id = str(results.get("story_id") or implementation.get("story_id") or story.get("id"))
    criteria = list(story.get("acceptance_criteria") or [])
    tests = list(implementation.get("tests") or [])
    covered = {str(t.get("criterion")) for t in tests} & {str(c) for c in criteria}
    executed = (
        bool((results.get("evidence") or {}).get("executed")) and results.get("total") is not None
    )
    completed = [str(r.get("story_id")) for r in [*earlier, results] if _all_passed(r)]
    return {
        "story_id": story_id,
        "status": "implemented" if _all_passed(results) else "incomplete",
        "criteria_total": len(criteria),
        "criteria_covered": len(covered),
        "tests_written": len(tests),
        "tests_executed": executed,
        "tests_passed": results.get("passed"),
        "tests_failed": results.get("failed"),
        "commit": results.get("commit"),
        "files": sorted((implementation.get("files_changed") or {}).keys()),
        "completed_story_ids": completed,
        "remaining_stories": max(len(stories) - iteration, 0),
        "next_story_id": stories[iteration].get("id") if iteration < len(stories) else None,
        "notes": _notes(story_id, results, executed),
    }


def _find(step: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The output of ``step`` (outputs by agent) that has ``key``; empty when none has."""
    return next((o for o in step.values() if isinstance(o, Mapping) and key in o), {})


def _all_passed(results: Mapping[str, Any]) -> bool:
    rows = results.get("stories") or []
    return bool(rows) and all(row.get("outcome") == "passed" for row in rows)


def _notes(story_id: str, results: Mapping[str, Any], executed: bool) -> str:
    if not executed:
        why = results.get("problem") or "the test run did not execute"
        return f"{story_id}: acceptance tests were not run ({why})."
    return (
        f"{story_id}: pytest ran {results.get('total')} acceptance tests at commit "
        f"{str(results.get('commit'))[:12]}: {results.get('passed')} passed, "
        f"{results.get('failed')} failed."
    )
