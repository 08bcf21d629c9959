"""``bench/peers.py``: the other peers' rows read from their driver's output on this machine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from bench import peers, tables

LANGGRAPH = {"langgraph": "1.2.24", "langgraph-checkpoint-sqlite": "3.1.2"}


def _line(peer: str, workload: str, **fields: Any) -> dict[str, Any]:
    return {"peer": peer, "workload": workload, "ts": "2026-11-28T12:10:00", "rc": 0, **fields}


def _ran(peer: str, workload: str, walls: list[float], n: int | None = None) -> dict[str, Any]:
    result = {"walls": walls, "versions": LANGGRAPH, "rss": {"tree_mb": 90.4 if n else 70.0}}
    return _line(peer, workload, n=n, round=0, result=result)


def _trial(ok: bool, rerun: int, took: float) -> dict[str, Any]:
    execs = {"completed_then_rerun": rerun, "re_executed": rerun + 8}
    return _line("langgraph", "w3", ok=ok, execs=execs, restart_to_done_s=took, round=0)


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_peers_figures_are_the_medians_of_its_successful_runs(tmp_path: Path) -> None:
    lines = [
        _ran("floor", "w1", [0.27, 0.27]),  # measured beside IdeaMine instead: left out
        _ran("langgraph", "w1", [0.30, 0.31, 0.32]),
        _ran("langgraph", "w1", [0.33, 0.34]),
        {**_ran("langgraph", "w1", [9.0]), "rc": 1},  # a failed invocation: left out
        _ran("langgraph", "w2", [0.2, 0.2], n=200),
        _ran("langgraph", "w2", [2.5], n=2000),
        _trial(True, 0, 2.0),
        _trial(True, 1, 2.2),
        _trial(False, 0, 9.0),
    ]
    day, rows = peers.measured(_write(tmp_path / "peers.jsonl", lines))

    assert day == "2026-11-28"
    assert list(rows) == ["LangGraph 1.2.24"]
    row = rows["LangGraph 1.2.24"]
    assert row["w1"] == pytest.approx(0.32)
    assert row["w1_over"] == pytest.approx(0.08)
    assert (row["w2_200"], row["w2_2000"], row["growth"], row["rss"]) == (1000, 800, 1.25, 90)
    assert (row["w3_ok"], row["w3_rerun_done"], row["w3_restart"]) == ("2/3", "0,1,0", 2.1)


def test_the_summary_shows_measured_peers_in_place_of_the_copied_ones(tmp_path: Path) -> None:
    lines = [_ran("langgraph", "w1", [0.30])]  # no W2, no W3: shown as n/a
    day, rows = peers.measured(_write(tmp_path / "peers.jsonl", lines))
    row = tables._peer_row(f"LangGraph 1.2.24, measured {day}", rows["LangGraph 1.2.24"])

    assert row[:4] == ["LangGraph 1.2.24, measured 2026-11-28", "0.300", "0.060", "0.58"]
    assert row[4:] == ["n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"]


RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def test_a_stored_result_shows_the_peers_it_was_given_and_older_ones_the_copied_rows() -> None:
    """Through the JSON ``bench/run.py`` writes: 12:26 ran with ``--peers``, 12:04 without."""
    given = tables.summary(json.loads((RESULTS / "2026-11-28-1226.json").read_text()))
    older = tables.summary(json.loads((RESULTS / "2026-11-28-1204.json").read_text()))

    assert "| LangGraph 1.2.24, measured 2026-11-28 | 0.279 | 0.039 | 0.38 | 1695 | 1606 |" in given
    assert "| Temporal 1.35.0, measured 2026-11-28 |" in given
    assert "copied" not in given
    assert "| LangGraph 1.2.24, copied 2026-11-25 | 0.302 | 0.062 |" in older
    assert "measured 2026" not in older


def test_a_variant_is_a_row_of_its_own(tmp_path: Path) -> None:
    lines = [_ran("langgraph", "w1", [0.30]), _ran("langgraph-sync", "w1", [0.40])]
    _, rows = peers.measured(_write(tmp_path / "peers.jsonl", lines))

    assert list(rows) == ["LangGraph 1.2.24", "LangGraph 1.2.24 (durability sync)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no peer other than the floor"),
        ('{"peer": "floor", "workload": "w1", "ts": "2026-11-28"}\n', "no peer other than"),
        ('{"peer": "langgraph"\n', "peers.jsonl:1: not JSON"),
        ('{"peer": "langgraph", "ts": "x"}\n', "peers.jsonl:1: not a line of"),
        ("[1, 2]\n", "peers.jsonl:1: not a line of"),
        (
            '{"peer": "langgraph", "workload": "w1", "ts": "x", "rc": 0, "result": {"rss": {}}}\n',
            "peers.jsonl:1: not a line of bench-peers/run_all.py's output (KeyError: 'walls'",
        ),
        (
            '{"peer": "floor", "workload": "w1", "ts": "x"}\n'
            '{"peer": "dbos", "workload": "w2", "ts": "x", "rc": 0, "n": 2000,'
            ' "result": {"walls": [1.0], "rss": 5}}\n',
            "peers.jsonl:2: not a line of bench-peers/run_all.py's output (TypeError",
        ),
        (
            '{"peer": "hatchet", "workload": "w1", "ts": "x"}\n',
            "peers.jsonl:1: unknown peer 'hatchet' (known: langgraph, langgraph-sync,",
        ),
    ],
)
def test_a_file_that_is_not_the_drivers_output_is_refused_by_name(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "peers.jsonl"
    path.write_text(text)
    with pytest.raises(peers.PeersFileError, match=re.escape(expected)):
        peers.measured(path)


def test_a_missing_or_binary_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(peers.PeersFileError, match=re.escape("missing.jsonl: cannot read it")):
        peers.measured(tmp_path / "missing.jsonl")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(peers.PeersFileError, match=re.escape("binary.jsonl: cannot read it")):
        peers.measured(binary)
