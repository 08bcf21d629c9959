"""Run every IdeaMine benchmark, print the tables, and write
``bench/results/<date>-<HHMM>.json`` (the UTC date and time it started; a run never replaces
another's file).

    .venv/bin/python bench/run.py            # the full set (about 4 minutes here)
    .venv/bin/python bench/run.py --quick    # one short pass of each workload
    .venv/bin/python bench/run.py --peers bench/results/peers-2026-11-28.jsonl
                                             # the other peers' rows from their driver's
                                             # output on this machine (not copied ones)

W1 and W2 run in the embedded mode (one process per round, SQLite), interleaved round by
round with the peers' floor script; W3 kills ``ideamine run`` and resumes it; the PostgreSQL
section drives ``ideamine worker`` processes; the last section runs one real idea offline.
See docs/benchmarks.md for the method and the findings.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: find `bench`

from bench import crash, fleet, gauge, offline, peers, proc, tables, targets
from bench import report as rp

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How much of each workload to run."""

    rounds: int = 3
    reps: int = 5
    w2_rounds: int = 2
    w2_big: int = 2000
    w3_trials: int = 3
    pg_workers: tuple[int, ...] = (1, 4)
    offline_runs: int = 3


QUICK = Plan(rounds=1, reps=2, w2_rounds=1, w2_big=0, w3_trials=1, pg_workers=(1,), offline_runs=1)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, object]:
    """What the figures were measured on, and how busy it was."""
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(total_kb / 2**20, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": fleet.server_version(),
        "kernel": platform.release(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "gauges_start": gauge.gauges(),
        "source": revision(),
    }


def revision() -> dict[str, object]:
    """The commit the product and benchmark code came from, and whether either had changes
    not committed (then the figures belong to no commit)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return {"commit": None, "uncommitted": None}  # not a git checkout
    return {"commit": commit, "uncommitted": bool(git("status", "--porcelain", "src", "bench"))}


def inproc(workload: str, folder: Path, *extra: str) -> dict[str, object]:
    return proc.child("inproc", workload, "--dir", str(folder), *extra)[0]


def w1(plan: Plan, scratch: Path) -> dict[str, object]:
    """W1 rounds, IdeaMine then the floor (FULL, NORMAL) in each round."""
    runs: dict[str, list[dict[str, object]]] = {
        "ideamine": [],
        "floor-FULL": [],
        "floor-NORMAL": [],
    }
    for r in range(plan.rounds):
        say(f"W1 round {r + 1}/{plan.rounds}")
        runs["ideamine"].append(inproc("w1", scratch / f"w1-{r}", "--reps", str(plan.reps)))
        for sync in ("FULL", "NORMAL"):
            if peers.available():
                runs[f"floor-{sync}"].append(
                    peers.floor("w1", scratch / f"fl1-{sync}-{r}", sync, reps=plan.reps)
                )
    out = {}
    for label, found in runs.items():
        if found:
            walls = [w for item in found for w in item["walls"]]
            out[label] = {
                **rp.w1_figures(walls),
                "round_medians": [rp.spread(i["walls"])["median"] for i in found],
                "rss_mb": max(_rss(i) for i in found),
            }
    return out


def _rss(item: dict[str, object]) -> float:
    rss = item.get("rss_mb", item.get("rss"))
    return float(rss["self_mb"]) if isinstance(rss, dict) else float(rss or 0)  # the floor nests it


def w2(plan: Plan, scratch: Path) -> dict[str, object]:
    """W2 rounds at N=200 (and N=2000 unless quick), IdeaMine and the floor interleaved."""
    sizes = [(200, plan.reps), *([(plan.w2_big, 3)] if plan.w2_big else [])]
    walls: dict[tuple[str, int], list[float]] = {}
    rss: dict[tuple[str, int], float] = {}
    for r in range(plan.w2_rounds):
        for n, reps in sizes:
            say(f"W2 round {r + 1}/{plan.w2_rounds} N={n}")
            found = {
                "ideamine": inproc(
                    "w2", scratch / f"w2-{n}-{r}", "--n", str(n), "--reps", str(reps)
                )
            }
            if peers.available():
                for sync in ("FULL", "NORMAL"):
                    found[f"floor-{sync}"] = peers.floor(
                        "w2", scratch / f"fl2-{sync}-{n}-{r}", sync, n=n, reps=reps
                    )
            for label, item in found.items():
                walls.setdefault((label, n), []).extend(item["walls"])
                rss[(label, n)] = max(rss.get((label, n), 0.0), _rss(item))
    out = {}
    for label in sorted({label for label, _ in walls}):
        out[label] = rp.w2_figures(walls[(label, 200)], walls.get((label, plan.w2_big), []))
        out[label]["rss_mb"] = {str(n): rss[(label, n)] for l2, n in rss if l2 == label}
    return out


def postgres(plan: Plan, scratch: Path) -> dict[str, object]:
    """W1 and W2 (N=200, and N=2000 unless quick) per worker count, then W3 with two
    workers, one killed. W2's tasks/s count from the run's creation in the store to its
    completion (the submitting CLI's own start-up is W1's submit-to-done)."""
    out: dict[str, object] = {}
    for count in plan.pg_workers:
        for workload in ("w1", "w2"):
            say(f"PostgreSQL {workload} with {count} worker(s)")
            found = fleet.throughput(scratch / "pg", workload, count, reps=plan.reps)
            key = f"{workload}_{count}w"
            if workload == "w1":
                figures = rp.w1_figures(found["walls"])
            else:
                big = []
                if plan.w2_big:
                    say(f"PostgreSQL w2 N={plan.w2_big} with {count} worker(s)")
                    big = fleet.throughput(
                        scratch / "pg-big", workload, count, n=plan.w2_big, reps=3
                    )["created_to_done"]
                figures = rp.w2_figures(found["created_to_done"], big)
            out[key] = {
                **figures,
                "submit_to_done": rp.spread(found["walls"]),
                "created_to_done": rp.spread(found["created_to_done"]),
                "worker_rss_mb": found["worker_rss_mb"],
            }
    trials = []
    for t in range(plan.w3_trials):
        say(f"PostgreSQL W3 trial {t + 1}/{plan.w3_trials}")
        trials.append(fleet.crash_trial(scratch / f"pg-w3-{t}"))
    out["w3_2w"] = trials
    return out


def w3(plan: Plan, scratch: Path) -> list[dict[str, object]]:
    say(f"W3 crash-resume on SQLite, {plan.w3_trials} trial(s)")
    return crash.main(scratch / "w3", plan.w3_trials)


def real_idea(plan: Plan, scratch: Path) -> dict[str, object]:
    say(f"offline pipeline of one real idea, {plan.offline_runs} run(s)")
    found = [offline.one(scratch / f"offline-{i}") for i in range(plan.offline_runs)]
    return {
        "wall": rp.spread([f["wall_s"] for f in found]),
        "rss_mb": rp.spread([f["rss_mb"] for f in found]),
        "summary": found[0]["summary"],
    }


def _peers(path: Path) -> dict[str, object]:
    """Read the peers' file before the benchmarks run, so a wrong path fails at once."""
    try:
        day, rows = peers.measured(path)
    except peers.PeersFileError as exc:
        raise SystemExit(f"bench/run.py: --peers: {exc}") from None
    return {"file": str(path), "day": day, "rows": rows}


def compile_sources() -> None:
    """Byte-compile IdeaMine's (editable) sources once, as an installed copy is. Without it,
    where PYTHONDONTWRITEBYTECODE is set (this machine sets it), every ``ideamine`` process
    the benchmarks start would compile the package from source first (~0.3 s each)."""
    source = Path(__file__).resolve().parents[1] / "src"
    if not compileall.compile_dir(source, quiet=1, workers=0):
        raise SystemExit(f"could not byte-compile {source}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short pass of each workload")
    parser.add_argument(
        "--peers",
        type=Path,
        metavar="FILE",
        help="the other peers' figures from this output of bench-peers/run_all.py (--out) "
        "instead of the ones copied from bench-peers/RESULTS.md",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    known = _peers(args.peers) if args.peers else None
    command = ["python bench/run.py"]
    command += ["--quick"] if args.quick else []
    command += [f"--peers {args.peers}"] if args.peers else []
    compile_sources()
    started = time.time()
    results: dict[str, object] = {
        "date": date.today().isoformat(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "quick": args.quick,
        "command": " ".join(command),
        "plan": asdict(plan),
        "machine": machine(),
    }
    if known:
        results["peers"] = known
    with tempfile.TemporaryDirectory(prefix="ideamine-bench-") as tmp:
        scratch = Path(tmp)
        results["w1"] = w1(plan, scratch)
        results["w2"] = w2(plan, scratch)
        results["w3"] = w3(plan, scratch)
        results["postgresql"] = postgres(plan, scratch)
        results["offline"] = real_idea(plan, scratch)
    machine_now = results["machine"]
    assert isinstance(machine_now, dict)
    machine_now["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    machine_now["gauges_end"] = gauge.gauges()
    results["elapsed_s"] = round(time.time() - started, 1)
    results["targets"] = [verdict.as_dict() for verdict in targets.judge(results)]
    print(tables.render(results))
    RESULTS.mkdir(exist_ok=True)
    name = time.strftime("%Y-%m-%d-%H%M", time.gmtime(started)) + ("-quick" if args.quick else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    say(f"wrote {RESULTS / name}.json in {results['elapsed_s']} s")


if __name__ == "__main__":
    main()
