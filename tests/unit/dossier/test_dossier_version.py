"""Version derivation: each rule on small surfaces, plus reading surfaces from artifacts."""

from __future__ import annotations

import pytest

from ideamine.dossier.version import Surface, derive_version, parse_version
from ideamine.errors import UsageError

BASE = Surface(
    operations=("GET /farmers", "POST /farmers"),
    required={"Farmer": ("id", "name")},
    entities=("Farmer",),
    stories=("US-001",),
)


def _derive(current: Surface, previous: str = "1.4.2") -> tuple[str, str, tuple[str, ...]]:
    decision = derive_version(current, BASE, previous)
    return decision.number, decision.bump, decision.reasons


def test_first_dossier_is_0_1_0() -> None:
    decision = derive_version(BASE, None, None)
    assert (decision.number, decision.bump, decision.previous) == ("0.1.0", "initial", None)


def test_unchanged_surface_is_a_patch() -> None:
    assert _derive(BASE)[:2] == ("1.4.3", "patch")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"stories": ("US-001", "US-002")}, "new story: US-002"),
        (
            {"operations": ("DELETE /farmers", "GET /farmers", "POST /farmers")},
            "new endpoint: DELETE /farmers",
        ),
        ({"entities": ("Farmer", "Order")}, "new entity: Order"),
    ],
)
def test_additions_are_minor(change: dict[str, tuple[str, ...]], reason: str) -> None:
    number, bump, reasons = _derive(Surface(**{**_fields(BASE), **change}))
    assert (number, bump) == ("1.5.0", "minor") and reason in reasons


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"operations": ("GET /farmers",)}, "endpoint removed: POST /farmers"),
        ({"operations": ()}, "path removed: /farmers"),
        (
            {"required": {"Farmer": ("id", "name", "email")}},
            "required fields of schema Farmer changed (+email)",
        ),
        ({"required": {"Farmer": ("id",)}}, "required fields of schema Farmer changed (-name)"),
        ({"entities": ()}, "data-model entity removed: Farmer"),
    ],
)
def test_breaking_changes_are_major(change: dict[str, object], reason: str) -> None:
    number, bump, reasons = _derive(Surface(**{**_fields(BASE), **change}))  # type: ignore[arg-type]
    assert (number, bump) == ("2.0.0", "major") and reason in reasons


def test_breaking_wins_over_additions() -> None:
    current = Surface(**{**_fields(BASE), "entities": ("Order",), "stories": ("US-001", "US-009")})
    assert _derive(current)[1] == "major"


def test_override_keeps_the_derived_reasoning() -> None:
    decision = derive_version(BASE, BASE, "0.3.0", override="1.0.0")
    assert (decision.number, decision.bump) == ("1.0.0", "override")
    assert decision.reasons[0] == "derived 0.3.1 (patch) was overridden by --version 1.0.0"


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "01.2.3", "1.2.3-beta", ""])
def test_versions_must_be_semantic(text: str) -> None:
    with pytest.raises(UsageError):
        parse_version(text)


def test_surface_of_artifacts_and_json_round_trip() -> None:
    openapi = {
        "paths": {"/a": {"get": {}, "post": {}, "parameters": []}, "/a/{id}": {"delete": {}}},
        "components": {"schemas": {"A": {"required": ["x", "id"]}, "B": {"type": "object"}}},
    }
    surface = Surface.of(openapi, {"entities": [{"name": "A"}]}, {"stories": [{"id": "US-001"}]})
    assert surface.operations == ("DELETE /a/{id}", "GET /a", "POST /a")
    assert surface.required == {"A": ("id", "x"), "B": ()}
    assert Surface.from_json(surface.to_json()) == surface
    assert Surface.of(None, None, None) == Surface()
    assert Surface.from_json("not a surface") == Surface()


def _fields(surface: Surface) -> dict[str, object]:
    return {
        "operations": surface.operations,
        "required": surface.required,
        "entities": surface.entities,
        "stories": surface.stories,
    }
