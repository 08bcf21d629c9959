"""The story loop's guards: story_completion and acceptance_tests, over pytest's evidence.

AcceptanceTestResults may be one report or, fanned in by concat, one per iteration
(``{"items": [...]}``); the outcomes of every measured report are combined per
``(story_id, test)``, a later iteration's outcome replacing an earlier one. Reports without
executed evidence are skipped and named; with none measured at all the guard reports "no
evidence" (severity high).

**acceptance_tests**: the pass rate over those outcomes (or the last report's ``passed`` /
``total`` when it lists none) must reach ``min_pass_rate`` (0.9), else the guard fails
critical; rubric ``acceptance_tests``; failing tests are an issue of kind ``tests`` naming
each story and test.

**story_completion**: a story is complete when its implementation is recorded
(ImplementedStories, or StoryProgress ``completed_story_ids``) and every acceptance test of it
passed. At least ``min_stories`` (5) must be complete; rubric ``story_completion`` scores the
share of the user stories (UserStories, else the implemented ones) that are. Short stories are
an issue of kind ``coverage`` for the story implementer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.evidence import no_evidence, unmeasured
from ideamine.knowledge.guards.reading import entries, is_number, listed, pool, records
from ideamine.knowledge.guards.settings import COUNT, NUMBER, settings
from ideamine.knowledge.guards.verdict import fraction, report, shown

__all__ = ["Outcomes", "acceptance_outcomes", "check_acceptance_tests", "check_story_completion"]

ACCEPTANCE_KEYS = {"min_pass_rate": NUMBER}
COMPLETION_KEYS = {"min_stories": COUNT}

Outcomes = dict[tuple[str, str], str]


def acceptance_outcomes(content: object) -> tuple[Outcomes, list[Mapping[str, Any]], list[str]]:
    """Combined outcomes, the measured reports, and notes: why the other reports do not
    count, and problems the measured runs reported."""
    outcomes: Outcomes = {}
    measured: list[Mapping[str, Any]] = []
    skipped: list[str] = []
    for index, entry in enumerate(entries(content)):
        problem = unmeasured(entry, f"AcceptanceTestResults report {index + 1}")
        if problem:
            skipped.append(problem)
            continue
        measured.append(entry)
        if isinstance(entry.get("problem"), str) and entry["problem"]:
            skipped.append(f"report {index + 1} ({entry.get('story_id', '?')}): {entry['problem']}")
        for row in records(entry, "stories"):
            key = (str(row.get("story_id", "?")), str(row.get("test", "?")))
            outcomes[key] = str(row.get("outcome", "")).lower()
    if not entries(content):
        skipped.append("AcceptanceTestResults is missing")
    return outcomes, measured, skipped


def check_acceptance_tests(given: GuardInput) -> GuardReport:
    """The acceptance_tests guard."""
    cfg = settings("acceptance_tests", given.config, ACCEPTANCE_KEYS)
    minimum = cfg.number("min_pass_rate", 0.9)
    outcomes, measured, skipped = acceptance_outcomes(given.artifacts.get("AcceptanceTestResults"))
    if not measured:
        return no_evidence("acceptance_tests", ("acceptance_tests",), skipped)
    passed, total = _tally(outcomes, measured[-1])
    rate = fraction(passed, total)
    failing = [f"{s}::{t} {outcome}" for (s, t), outcome in outcomes.items() if outcome != "passed"]
    head = f"acceptance tests: {passed} of {total} passed ({rate:.2f}, minimum {minimum:.2f})"
    enough = total > 0 and rate >= minimum - 1e-9
    return report(
        "acceptance_tests",
        passed=enough,
        score=rate,
        reasons=[head, *([f"not passing: {shown(failing, 10)}"] if failing else []), *skipped],
        scores={"acceptance_tests": rate},
        kind="tests",
        # below the minimum the gate must not pass on a high score elsewhere (as the build
        # gate with failing tests): the stories' own tests say the product does not work
        severity="high" if enough else "critical",
    )


def _tally(outcomes: Outcomes, last: Mapping[str, Any]) -> tuple[int, int]:
    if outcomes:
        return sum(1 for o in outcomes.values() if o == "passed"), len(outcomes)
    passed, total = last.get("passed"), last.get("total")
    return (int(passed) if is_number(passed) else 0), (int(total) if is_number(total) else 0)


def check_story_completion(given: GuardInput) -> GuardReport:
    """The story_completion guard."""
    cfg = settings("story_completion", given.config, COMPLETION_KEYS)
    need = cfg.count("min_stories", 5)
    outcomes, measured, skipped = acceptance_outcomes(given.artifacts.get("AcceptanceTestResults"))
    if not measured:
        return no_evidence("story_completion", ("story_completion",), skipped)
    implemented, verified = _implemented(given.artifacts), _verified(outcomes)
    user_stories = pool(given.artifacts, given.upstream).get("UserStories")
    stories = [str(s) for s in listed(user_stories, "stories[].id")] or sorted(implemented)
    complete = [s for s in stories if s in implemented and verified.get(s) is True]
    open_ = [_why(s, implemented, verified) for s in stories if s not in complete]
    score = fraction(len(complete), len(stories))
    head = (
        f"{len(complete)} of {len(stories)} stories implemented with passing acceptance "
        f"tests (minimum {need})"
    )
    return report(
        "story_completion",
        passed=len(complete) >= need,
        score=score,
        reasons=[head, *([f"not complete: {shown(open_, 10)}"] if open_ else []), *skipped],
        scores={"story_completion": score},
        kind="coverage",
        severity="high",
        missing_agents=given.producers.get("ImplementedStories", ()),
    )


def _implemented(artifacts: Mapping[str, Any]) -> set[str]:
    done = {
        str(item.get("story_id"))
        for item in entries(artifacts.get("ImplementedStories"))
        if item.get("story_id")
    }
    for item in entries(artifacts.get("StoryProgress")):
        done |= {str(s) for s in item.get("completed_story_ids") or ()}
    return done


def _verified(outcomes: Outcomes) -> dict[str, bool]:
    """Per story: True when every test of it passed."""
    result: dict[str, bool] = {}
    for (story, _), outcome in outcomes.items():
        result[story] = result.get(story, True) and outcome == "passed"
    return result


def _why(story: str, implemented: set[str], verified: Mapping[str, bool]) -> str:
    if story not in implemented:
        return f"{story} (not implemented)"
    if story not in verified:
        return f"{story} (no acceptance result)"
    return f"{story} (acceptance tests fail)"
