"""Schemathesis fuzzes every operation of the published OpenAPI against the real server:
no generated request, valid or not, gets a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from tests.api.serving import serving
from tests.support.configs import write_callable_pipeline

CALLS: list[int] = []
schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The schema of a server whose runs are one cheap phase (the fuzzer creates many)."""
    cwd = tmp_path_factory.mktemp("fuzz")
    config = write_callable_pipeline(
        cwd / "config", {"intake": []}, agents_per_phase=1, function="tests.support.agents:noop"
    )
    with serving(cwd, "--config", str(config)) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_no_operation_answers_5xx(api_schema: object) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[attr-defined]
    assert len(operations) >= 19
    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: object) -> None:
            case.call_and_validate(checks=[not_a_server_error])  # type: ignore[attr-defined]
            CALLS.append(1)

        check()
    assert len(CALLS) > 10 * len(operations)  # the fuzzer really sent requests
