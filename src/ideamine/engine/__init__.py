"""Pure decisions: DAG, fan-out, fan-in, retries, states, and plan(snapshot) -> actions. No I/O."""
