"""``bench/targets.py``: issue 9's targets judged from a ``bench/run.py`` result."""

from __future__ import annotations

import copy
from typing import Any

from bench import targets


def _trial(done: int, took: float, rerun: int = 0, ok: bool = True) -> dict[str, Any]:
    return {
        "done_before_kill": done,
        "restart_to_done_s": took,
        "completed_then_rerun": rerun,
        "ok": ok,
    }


RESULTS: dict[str, Any] = {
    "w1": {"ideamine": {"overhead_s": 0.05}, "floor-FULL": {"overhead_s": 0.043}},
    "w2": {
        "ideamine": {"tasks_s_2000": 3000, "growth": 1.3, "rss_mb": {"200": 50.0, "2000": 95.3}},
        "floor-FULL": {"tasks_s_2000": 6397},
    },
    # 40 agents done (5 levels of 8) leave 7 levels of 0.2 s: 1.4 s, plus the 0.3 s margin
    "w3": [_trial(40, 1.69), _trial(40, 1.70), _trial(40, 1.71)],
    "postgresql": {"w2_4w": {"tasks_s_2000": 2000}},
    "offline": {"wall": {"median": 29.9}, "rss_mb": {"max": 286.0}},
}


def _verdicts(results: dict[str, Any]) -> dict[str, bool]:
    return {v.target: v.met for v in targets.judge(results)}


def test_every_target_is_met_at_its_bound() -> None:
    verdicts = targets.judge(RESULTS)

    assert len(verdicts) == 8
    assert all(v.met for v in verdicts), [v for v in verdicts if not v.met]
    w3 = next(v for v in verdicts if v.target == "W3 restart-to-done, SQLite")
    assert w3.bound == "≤ remaining (1.4 s) + 0.3 s"
    assert w3.measured == "1.70 s: +0.30 s over the remaining work"
    assert "floor FULL 0.043 s" in verdicts[0].measured


def test_the_remaining_work_counts_levels_with_two_phases_sharing_one() -> None:
    """12 levels of 0.2 s; security and story-loop (phases 8 and 9) run side by side."""
    expected = {0: 2.4, 40: 1.4, 47: 1.4, 56: 1.0, 64: 1.0, 72: 0.8, 80: 0.6, 96: 0.2, 104: 0.0}
    for done, left in expected.items():
        assert abs(targets.remaining_s(done) - left) < 1e-9, done


def test_each_w3_trial_is_judged_against_its_own_remaining_work() -> None:
    later = copy.deepcopy(RESULTS)  # killed later: less left, so less time allowed
    later["w3"] = [_trial(64, 1.29), _trial(72, 1.11), _trial(80, 0.89)]
    assert _verdicts(later)["W3 restart-to-done, SQLite"]
    later["w3"][1] = _trial(72, 1.2)
    later["w3"][2] = _trial(80, 1.0)
    assert not _verdicts(later)["W3 restart-to-done, SQLite"]


def test_each_target_is_missed_just_past_its_bound() -> None:
    past = {
        "W1 overhead, SQLite": ("w1", "ideamine", "overhead_s", 0.0501),
        "W2 at N = 2,000, SQLite": ("w2", "ideamine", "tasks_s_2000", 2999),
        "W2 cost per task, 2,000 vs 200": ("w2", "ideamine", "growth", 1.31),
        "W2 at N = 2,000, PostgreSQL, 4 workers": ("postgresql", "w2_4w", "tasks_s_2000", 1999),
    }
    for target, (section, entry, key, value) in past.items():
        results = copy.deepcopy(RESULTS)
        results[section][entry][key] = value
        assert _verdicts(results)[target] is False, target
        assert sum(not met for met in _verdicts(results).values()) == 1, target


def test_memory_time_and_reruns_are_missed_past_their_bounds() -> None:
    heavy = copy.deepcopy(RESULTS)
    heavy["w2"]["ideamine"]["rss_mb"]["2000"] = 96.0  # 100.7 MB
    heavy["offline"]["rss_mb"]["max"] = 287.0  # 300.9 MB
    assert not _verdicts(heavy)["W2 peak RSS at N = 2,000"]
    assert not _verdicts(heavy)["offline pipeline of one real idea"]

    slow = copy.deepcopy(RESULTS)
    slow["w3"] = [_trial(40, 1.75), _trial(40, 1.71), _trial(48, 1.5)]  # median 1.71 > 1.7
    assert not _verdicts(slow)["W3 restart-to-done, SQLite"]

    rerun = copy.deepcopy(RESULTS)
    rerun["w3"][1] = _trial(40, 1.7, rerun=1)
    assert not _verdicts(rerun)["W3 finished tasks re-executed"]
    wrong = copy.deepcopy(RESULTS)
    wrong["w3"][2] = _trial(40, 1.7, ok=False)
    assert not _verdicts(wrong)["W3 finished tasks re-executed"]


def test_a_quick_pass_judges_only_what_it_measured() -> None:
    quick = copy.deepcopy(RESULTS)
    del quick["w2"]["ideamine"]["tasks_s_2000"], quick["w2"]["ideamine"]["growth"]
    del quick["w2"]["ideamine"]["rss_mb"]["2000"]  # a quick pass measures N = 200 only
    quick["postgresql"] = {}

    verdicts = {v.target: v for v in targets.judge(quick)}

    for target in (
        "W2 at N = 2,000, SQLite",
        "W2 cost per task, 2,000 vs 200",
        "W2 peak RSS at N = 2,000",
        "W2 at N = 2,000, PostgreSQL, 4 workers",
    ):
        assert verdicts[target].met is None
        assert verdicts[target].measured == "not measured (--quick)"
    rendered = targets.render(list(verdicts.values()))
    assert "missed" not in rendered and rendered.count("| – |") == 4
