"""``ideamine replay`` re-runs no tool: callable agents (the tool runners) return the original
run's recorded outputs, so measurements that differ between runs cannot change a replay."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import artifact_hashes, cli_env, ideamine, only_run_id


def test_replay_takes_callable_outputs_from_the_original_run(
    tmp_path: Path, callable_config: Path
) -> None:
    log = tmp_path / "exec.log"
    env = cli_env({"IDEAMINE_TEST_EXEC_LOG": str(log)})
    done = ideamine(
        "run",
        "a marketplace for farmers",
        "--config",
        str(callable_config),
        "-q",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = only_run_id(tmp_path)
    executed = log.read_text().count("start ")
    assert executed > 0

    replayed = ideamine("replay", run_id, cwd=tmp_path, env=env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replay identical" in replayed.stdout
    assert log.read_text().count("start ") == executed  # no agent ran again
    runs = ideamine("runs", "--json", cwd=tmp_path)
    copy = next(r for r in json.loads(runs.stdout) if r["id"] != run_id)["id"]
    assert artifact_hashes(tmp_path, copy) == artifact_hashes(tmp_path, run_id)
