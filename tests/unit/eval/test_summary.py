"""Specificity and the report's means, from hand-made results with known vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ideamine.eval.ideas import Idea
from ideamine.eval.report import render_html, render_markdown
from ideamine.eval.runner import Outcome
from ideamine.eval.summary import specificities, summarize


def idea(key: str, category: str) -> Idea:
    return Idea(key=key, name=key, description=f"{key} idea", category=category, row=2)


def result(item: Idea, own: list[float], artifacts: list[float], **over: object) -> dict:
    base = {
        "idea": {"key": item.key, "name": item.name, "category": item.category},
        "run_id": "r" + item.key,
        "status": "completed",
        "phases_passed": 13,
        "phases_total": 13,
        "completeness": {"score": 1.0},
        "executability": {"score": 1.0, "failed_step": None},
        "consistency": {"score": 0.6},
        "quality": 0.6,
        "validity": {"valid": True},
        "gates": {"pass_rate": 1.0, "attempts": 13},
        "tokens": 100,
        "cost_usd": 0.0,
        "wall_s": 30.0,
        "embeddings": {"idea": own, "prd": artifacts, "code": artifacts},
    }
    return {**base, **over}


A, B, C = idea("a", "Games"), idea("b", "Games"), idea("c", "Music")


def test_artifacts_about_their_own_idea_are_specific() -> None:
    # each idea's artifacts point where the idea does: cosine 1 with its own, 0 with others'
    results = [
        result(A, [1, 0, 0], [1, 0, 0]),
        result(B, [0, 1, 0], [0, 1, 0]),
        result(C, [0, 0, 1], [0, 0, 1]),
    ]
    assert specificities(results) == {}  # no other idea's artifacts are similar at all
    generic = [
        result(i, v, [1, 1, 1])
        for i, v in zip((A, B, C), ([1, 0, 0], [0, 1, 0], [0, 0, 1]), strict=True)
    ]
    assert specificities(generic) == {"a": 1.0, "b": 1.0, "c": 1.0}  # same artifacts for all


def test_specificity_is_own_over_others_mean() -> None:
    results = [result(A, [1, 0], [1, 0]), result(B, [0.6, 0.8], [0, 1])]
    # a: own cos 1, with b's artifacts 0 → undefined; b: own 0.8, with a's 0.6 → 1.3333
    assert specificities(results) == {"b": pytest.approx(0.8 / 0.6, abs=1e-4)}
    summary = summarize([Outcome(idea=A, result=results[0]), Outcome(idea=B, result=results[1])])
    assert summary["overall"]["specificity"] == pytest.approx(0.9 / 0.3, abs=1e-4)


def test_summary_means_categories_targets_and_unfinished() -> None:
    results = [
        result(A, [1, 0, 0], [0.9, 0.1, 0.1]),
        result(B, [0, 1, 0], [0.1, 0.9, 0.1], executability={"score": 0.0, "failed_step": "tests"}),
    ]
    outcomes = [
        Outcome(idea=A, result=results[0]),
        Outcome(idea=B, result=results[1]),
        Outcome(idea=C, result=None, problem="cut after 10 s"),
    ]
    summary = summarize(outcomes)
    assert (summary["ideas"], summary["finished"]) == (3, 2)
    assert summary["unfinished"] == [{"key": "c", "problem": "cut after 10 s"}]
    assert summary["overall"]["executability"] == 0.5
    assert summary["categories"]["Games"]["ideas"] == 2 and "Music" not in summary["categories"]
    met = {t["what"]: t["met"] for t in summary["targets"]}
    assert met["executability"] is False and met["completeness"] is False  # one idea unfinished
    markdown = render_markdown(summary, {"model": "offline:template", "command": "ideamine eval"})
    assert "| ChatDev | 0.56 | 0.88 | 0.8021 | 0.3953 |" in markdown
    assert "- `c`: cut after 10 s" in markdown
    page = render_html(summary, {"model": "<b>x</b>", "command": "ideamine eval"})
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "different embedding model" in page


def test_reports_are_written(tmp_path: Path) -> None:
    from ideamine.eval.report import write_reports

    summary = summarize([Outcome(idea=A, result=result(A, [1, 0], [1, 0]))])
    names = [p.name for p in write_reports(summary, {"model": "m", "command": "c"}, tmp_path)]
    assert names == ["report.json", "report.md", "report.html"]
