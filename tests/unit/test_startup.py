"""Start-up cost: jsonschema's optional rfc3987-syntax plug-in (about 1 s of grammar building)
is not loaded by IdeaMine, and stays importable for code that wants it."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import ideamine.cli.main
assert "jsonschema" in sys.modules, "the CLI validates configs with jsonschema"
assert "rfc3987_syntax" not in sys.modules, "the iri plug-in was loaded"
import rfc3987_syntax
assert rfc3987_syntax.is_valid_syntax("iri", "https://example.org/a")
print("ok")
"""


def test_the_cli_starts_without_the_iri_plugin_which_stays_importable() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
