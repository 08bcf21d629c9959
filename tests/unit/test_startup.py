"""Start-up cost: jsonschema's optional rfc3987-syntax and isoduration plug-ins (about 1 s of
grammar building, and arrow) are not loaded by IdeaMine, and stay importable for code that
wants them; the commands that need a web framework, the evaluation stack or the PostgreSQL
driver load them themselves, and the commands that only read a store start without the
configuration, agent and runtime stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from ideamine.cli.main import LAZY_COMMANDS, cli

PROBE = """
import sys
from ideamine.config.loader import load_pipeline
load_pipeline()
assert "jsonschema" in sys.modules, "the loader checks the shipped JSON Schemas with jsonschema"
assert "rfc3987_syntax" not in sys.modules, "the iri plug-in was loaded"
assert "isoduration" not in sys.modules and "arrow" not in sys.modules, "isoduration was loaded"
import rfc3987_syntax
assert rfc3987_syntax.is_valid_syntax("iri", "https://example.org/a")
import importlib.util
if importlib.util.find_spec("isoduration"):  # jsonschema's format extra, through cyclonedx
    import isoduration
    assert str(isoduration.parse_duration("P1D")) == "P1D"
print("ok")
"""


def test_the_cli_starts_without_the_slow_format_plugins_which_stay_importable() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


LAZY = """
import sys
from click.testing import CliRunner
from ideamine.cli.main import cli
heavy = (
    "fastapi", "uvicorn", "psycopg", "ideamine.eval.measure", "ideamine.api",
    "ideamine.service_quality", "ideamine.dossier", "ideamine.tools.osv",
    "opentelemetry.sdk.trace", "ideamine.observability.sdk",
)
loaded = [name for name in heavy if name in sys.modules]
assert not loaded, f"loaded at start: {loaded}"
listed = CliRunner().invoke(cli, ["--help"])
assert listed.exit_code == 0 and "serve" in listed.output and "eval" in listed.output
assert "dossier" in listed.output and "Answer RUN_ID's open question" in listed.output
loaded = [name for name in heavy if name in sys.modules]
assert not loaded, f"loaded by --help: {loaded}"
served = CliRunner().invoke(cli, ["serve", "--help"])
assert served.exit_code == 0 and "--port" in served.output, served.output
assert "fastapi" in sys.modules
print("ok")
"""


def test_the_web_framework_eval_and_postgres_driver_load_only_when_used() -> None:
    """``ideamine run`` and ``resume`` start without what ``serve``, ``eval``, a PostgreSQL
    store and tracing need (a third of a second of imports; OpenTelemetry's SDK ~25 ms)."""
    done = subprocess.run(
        [sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_a_lazy_commands_summary_is_its_own_short_help(name: str) -> None:
    """``--help`` lists a lazy command by the summary written beside its name, so that the
    list imports nothing; it must read as the command's own help would."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    summary = click.Command(name, help=LAZY_COMMANDS[name].summary)
    for limit in (45, 80, 400):
        assert summary.get_short_help_str(limit) == command.get_short_help_str(limit)


READING = """
import sys
from click.testing import CliRunner
from ideamine.cli.main import cli
stack = (
    "pydantic", "jsonschema", "jinja2", "yaml", "ideamine.config.loader",
    "ideamine.runtime.runner", "ideamine.agents.builtin", "ideamine.llm.registry",
)
for args in (["--help"], ["--version"], ["runs", "--store", STORE],
             ["events", RUN, "--store", STORE], ["verify", RUN, "--store", STORE],
             ["artifacts", RUN, "--store", STORE], ["events", "nope", "--store", STORE]):
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == (2 if "nope" in args else 0), (args, done.output)
    loaded = [name for name in stack if name in sys.modules]
    assert not loaded, f"{args[0]} loaded {loaded}"
print("ok")
"""


def test_the_commands_that_only_read_a_store_start_without_the_config_and_runtime_stack(
    tmp_path: Path,
) -> None:
    """``--help``, ``--version``, ``runs``, ``events``, ``verify`` and ``artifacts`` (about
    half the start-up time of ``run``), on a run submitted with ``--detach``; ``status`` reads
    the pinned configuration for the run's budgets."""
    _probe_on_a_submitted_run(READING, tmp_path)


def _probe_on_a_submitted_run(script: str, folder: Path) -> None:
    """Run ``script`` in a fresh interpreter, with ``STORE`` and ``RUN`` standing for a store
    in ``folder`` and a run submitted to it with ``--detach``; it prints ``ok``."""
    store = folder / "ideamine.db"
    submit = ["run", "an idea to list", "--detach", "--store", str(store)]
    made = subprocess.run(
        [sys.executable, "-m", "ideamine", *submit],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    probe = script.replace("STORE", repr(str(store))).replace("RUN", repr(made.stdout.strip()))
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


RICH = """
import json, sys
from click.testing import CliRunner
from ideamine.cli.app import escape
from ideamine.cli.main import cli
for args in (["runs", "--json", "--store", STORE], ["status", RUN, "--json", "--store", STORE]):
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, (args, done.output)
    json.loads(done.output)
    assert "rich" not in sys.modules, f"{args[0]} --json imported rich"
assert escape("[bold]x[/bold]") == "\\[bold]x\\[/bold]"
assert "rich" in sys.modules
done = CliRunner().invoke(cli, ["runs", "--store", STORE])
assert done.exit_code == 0 and RUN in done.output, done.output
print("ok")
"""


def test_json_output_starts_without_rich_which_loads_at_the_first_print(tmp_path: Path) -> None:
    """rich (~20–45 ms to import here) is loaded when something is printed through it, so
    ``--json`` commands, and ``run -q``/``resume -q`` (which print only the closing summary,
    after the run), start without it."""
    _probe_on_a_submitted_run(RICH, tmp_path)


TEMPLATES = """
import sys
from ideamine.llm.registry import Providers
import ideamine.runtime.runner
assert "jinja2" not in sys.modules, "the runtime imported Jinja2"
assert "ideamine.llm.offline" not in sys.modules, "the runtime imported the offline provider"
provider, model = Providers().resolve("offline:template")
assert type(provider).__name__ == "OfflineProvider" and model == "template"
assert "jinja2" in sys.modules
print("ok")
"""


def test_the_runtime_imports_the_template_stack_only_for_a_model_agent() -> None:
    """A pipeline of Python agents (a resumed benchmark run, a worker on such runs) starts
    without Jinja2, the offline provider and its text kit (~25 ms); the offline provider is
    created, and imports them, when a model reference first names it."""
    done = subprocess.run(
        [sys.executable, "-c", TEMPLATES], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


PLUGINS_ON_ANOTHER_THREAD = """
import sys, threading
import ideamine.jsonschemas as schemas
refusal = schemas._Refusal(["rfc3987_syntax"])
sys.meta_path.insert(0, refusal)
try:
    found = []
    other = threading.Thread(target=lambda: found.append(__import__("rfc3987_syntax")))
    other.start()
    other.join()
    assert found and found[0].is_valid_syntax("iri", "https://example.org/a"), found
    del sys.modules["rfc3987_syntax"]
    try:
        __import__("rfc3987_syntax")
    except ModuleNotFoundError as exc:
        assert exc.name == "rfc3987_syntax"
    else:
        raise AssertionError("the refusal did not hold on its own thread")
    refusal.lift()
    assert __import__("rfc3987_syntax").is_valid_syntax("iri", "https://example.org/a")
finally:
    sys.meta_path.remove(refusal)
print("ok")
"""


def test_the_plugins_are_refused_only_on_the_thread_importing_jsonschema() -> None:
    """jsonschema may be imported on a thread while agents run (``runtime.preload``): an
    agent importing a refused plug-in meanwhile gets it."""
    done = subprocess.run(
        [sys.executable, "-c", PLUGINS_ON_ANOTHER_THREAD],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
