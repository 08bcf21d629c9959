"""How an agent's context reads the outputs recorded so far in its phase attempt."""

from __future__ import annotations

from ideamine.engine.plan import GATE_KEY
from ideamine.runtime.context import _earlier

AFTER_ALL = "\uffff"  # a key after every agent's (the advancer's loop check reads them all)


def test_the_gate_judges_output_is_no_agents_output_in_a_loop() -> None:
    # A worker that did not see the loop's earlier checks (it replaced a killed one, or forgot
    # the finished run) reads every output of the attempt, the judge's verdict included.
    recorded = {"001.00.Impl": "i1", "001.01.Test": "t1", "002.00.Impl": "i2", GATE_KEY: {}}
    outputs, history = _earlier(recorded, True, AFTER_ALL, 2)
    assert outputs == {"Impl": "i2"}
    assert history == [{"Impl": "i1", "Test": "t1"}]


def test_the_gate_judges_output_is_skipped_in_a_fan_out_too() -> None:
    recorded = {"00.A": "a", "01.B": "b", GATE_KEY: {"passed": True}}
    outputs, history = _earlier(recorded, False, AFTER_ALL, 1)
    assert (outputs, history) == ({"A": "a", "B": "b"}, [])


def test_only_keys_before_the_asking_agent_count() -> None:
    outputs, _ = _earlier({"00.A": "a", "01.B": "b"}, False, "01.B", 1)
    assert outputs == {"A": "a"}
