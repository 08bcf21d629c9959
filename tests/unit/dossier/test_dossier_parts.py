"""Signing, evidence gaps, Markdown escaping and chart geometry, on small values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ideamine.canonical import canonical_json, content_hash
from ideamine.dossier.charts import cost_chart, gantt_chart
from ideamine.dossier.evidence import artifact_gaps
from ideamine.dossier.export_md import escape_markdown
from ideamine.dossier.schema import schema, schema_errors
from ideamine.dossier.sign import sign, verify, verify_file
from ideamine.errors import UsageError


def test_signature_is_the_sha256_of_the_canonical_json_without_it() -> None:
    signed = sign({"b": [1, 2], "a": "x"})
    assert signed["signature"]["value"] == content_hash({"a": "x", "b": [1, 2]})  # type: ignore[index]
    assert verify(signed).ok
    assert sign(signed) == signed  # re-signing replaces, never nests


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"a": "y"}, "does not match"),
        ({"extra": 1}, "does not match"),
        ({"signature": None}, "no signature"),
        ({"signature": {"algorithm": "md5", "value": "0"}}, "unknown signature algorithm"),
    ],
)
def test_any_change_breaks_the_signature(change: dict[str, object], reason: str) -> None:
    result = verify({**sign({"a": "x"}), **change})
    assert not result.ok and reason in result.reason


def test_verify_file_reads_pretty_or_canonical_json(tmp_path: Path) -> None:
    signed = sign({"title": "ü <b>"})
    (tmp_path / "c.json").write_text(canonical_json(signed))
    (tmp_path / "p.json").write_text(json.dumps(signed, indent=2))
    assert verify_file(tmp_path / "c.json").ok and verify_file(tmp_path / "p.json").ok
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="not JSON"):
        verify_file(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="cannot read"):
        verify_file(tmp_path / "missing.json")


def test_gaps_are_found_at_their_outermost_flag() -> None:
    content = {
        "executed": False,
        "reason": "not run",
        "tool": "k6",
        "inner": {"measured": False},
        "metrics": [{"measured": True}, {"measured": False, "reason": "later"}],
    }
    assert artifact_gaps("Perf", content) == [
        {"artifact": "Perf", "path": "/", "flag": "executed", "reason": "not run", "tool": "k6"}
    ]
    nested = {"metrics": [{"measured": True}, {"measured": False, "reason": "later"}]}
    assert [g["path"] for g in artifact_gaps("M", nested)] == ["/metrics/1"]
    planned = {"a/b": {"status": "planned", "reason": "soon"}, "c": {"status": "planned"}}
    assert [g["path"] for g in artifact_gaps("X", planned)] == ["/a~1b"]


def test_markdown_escaping_is_inert() -> None:
    text = escape_markdown("<script>x</script> | *bold* [link](http://e) `code`\nnext")
    assert "<" not in text and "\n" not in text
    assert "\\|" in text and "\\*bold\\*" in text and "\\[link\\]\\(http://e\\)" in text


def test_gantt_places_bars_on_one_time_axis() -> None:
    phases = [
        {
            "phase": "a",
            "attempt": 1,
            "status": "passed",
            "started_at": "2026-01-01T00:00:00+00:00",
            "finished_at": "2026-01-01T00:00:10+00:00",
        },
        {
            "phase": "b",
            "attempt": 2,
            "status": "running",
            "started_at": "2026-01-01T00:00:05+00:00",
            "finished_at": None,
        },
    ]
    chart = gantt_chart(phases)
    first, second = chart.bars
    assert first.x == chart.label_width and second.x > first.x
    assert second.label == "b #2" and second.note == "not finished"
    assert gantt_chart([]).bars == ()


def test_cost_chart_falls_back_to_tokens_when_every_call_was_free() -> None:
    free = cost_chart(
        [
            {"phase": "a", "cost_usd": 0.0, "tokens": 10},
            {"phase": "b", "cost_usd": 0.0, "tokens": 5},
        ]
    )
    assert "tokens" in free.caption and free.bars[0].width == 2 * free.bars[1].width
    paid = cost_chart([{"phase": "a", "cost_usd": 0.5, "tokens": 10}])
    assert paid.bars[0].note == "$0.5000"


def test_the_published_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    assert schema_errors({}) and schema_errors({"format": "ideamine.dossier/1"})


def test_cost_chart_with_nothing_spent_draws_no_axis() -> None:
    chart = cost_chart([{"phase": "a", "cost_usd": 0.0, "tokens": 0}])
    assert chart.ticks == () and chart.caption.startswith("No model call")
