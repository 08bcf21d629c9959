"""ideamine.tools.security on a hand-made workspace: real bandit, detect-secrets, cyclonedx-py."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from ideamine.tools.security import bom_problem, sast, sbom, secrets_scan

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PASSWORD = "hunter2-correct-horse"
HEX_SECRET = "8d7f9a2b3c4e5f60718293a4b5c6d7e8f9a0b1c2"
PRIVATE_KEY = "MIIEpAIBAAKCAQEA7bq98sl3Yz0qT4Gf"

RUN_PY = """\
import subprocess


def run(cmd: str) -> None:
    subprocess.run(cmd, shell=True)
"""

SETTINGS_PY = f'''\
AWS_ACCESS_KEY_ID = "{AWS_KEY}"
password = "{PASSWORD}"
SIGNING = """-----BEGIN RSA PRIVATE KEY-----
{PRIVATE_KEY}
-----END RSA PRIVATE KEY-----"""
digest = "{HEX_SECRET}"
'''

REQUIREMENTS = """\
# the app's dependencies
fastapi==0.115.0
PyYAML==6.0.1  # pinned, odd case
typing_extensions==4.12.2
starlette==0.38.0 \\
    --hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
requests>=2.31
-e .
private @ https://user:s3cr3t@example.invalid/private.whl
"""

TEST_PY = """\
def test_truth():
    assert True
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    files = {
        "backend/app/__init__.py": "",
        "backend/app/run.py": RUN_PY,
        "backend/app/settings.py": SETTINGS_PY,
        "backend/tests/test_truth.py": TEST_PY,
        "backend/requirements.txt": REQUIREMENTS,
        ".git/config": f'[core]\n\turl = "https://x:{AWS_KEY}@example.invalid"\n',
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


@pytest.fixture(scope="module")
def sast_report(workspace: Path) -> dict[str, object]:
    return sast(workspace)


def test_sast_finds_shell_true_as_bandit_rates_it(sast_report: dict) -> None:
    shell = [f for f in sast_report["findings"] if f["test_id"] == "B602"]
    assert shell == [
        {
            "file": "backend/app/run.py",
            "line": 5,
            "test_id": "B602",
            "issue": "subprocess call with shell=True identified, security issue.",
            "severity": "high",
            "confidence": "high",
        }
    ]
    counts = sast_report["counts"]
    assert counts["high"] == 1
    assert sum(counts.values()) == len(sast_report["findings"])
    assert sast_report["evidence"]["tool"] == "bandit"
    assert sast_report["evidence"]["exit_code"] == 0


def test_sast_skips_assert_used_and_says_so(sast_report: dict) -> None:
    assert sast_report["skipped_checks"] == ["B101"]
    assert not [f for f in sast_report["findings"] if f["test_id"] == "B101"]


def test_sast_never_repeats_a_hardcoded_password(sast_report: dict) -> None:
    passwords = [f for f in sast_report["findings"] if f["test_id"] == "B105"]
    assert passwords and all("[redacted]" in f["issue"] for f in passwords)
    assert PASSWORD not in json.dumps(sast_report)


def test_sast_of_nothing_is_not_executed(tmp_path: Path) -> None:
    report = sast(tmp_path)
    assert report["counts"] is None and report["evidence"]["executed"] is False


@pytest.fixture(scope="module")
def secrets_report(workspace: Path) -> dict[str, object]:
    return secrets_scan(workspace)


def test_secrets_are_found_by_file_line_and_type(secrets_report: dict) -> None:
    found = {(f["file"], f["line"], f["type"]) for f in secrets_report["findings"]}
    settings = "backend/app/settings.py"
    assert {
        (settings, 1, "AWS Access Key"),
        (settings, 2, "Secret Keyword"),
        (settings, 3, "Private Key"),
        (settings, 6, "Hex High Entropy String"),
    } <= found
    assert secrets_report["scanned"] is True
    assert secrets_report["count"] == len(secrets_report["findings"])
    assert all(set(f) == {"file", "line", "type"} for f in secrets_report["findings"])


def test_secrets_report_holds_no_secret_and_skips_git(secrets_report: dict) -> None:
    text = json.dumps(secrets_report)
    for secret in (AWS_KEY, PASSWORD, HEX_SECRET, PRIVATE_KEY):
        assert secret not in text
    assert not [f for f in secrets_report["findings"] if f["file"].startswith(".git/")]


def test_a_clean_workspace_has_zero_secrets_and_says_it_scanned(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print('hello')\n")
    report = secrets_scan(tmp_path)
    assert (report["scanned"], report["count"], report["findings"]) == (True, 0, [])
    assert report["evidence"]["tool"] == "detect-secrets"


@pytest.fixture(scope="module")
def bom(workspace: Path) -> dict[str, object]:
    return sbom(workspace)


def test_sbom_lists_the_pinned_requirements_with_purls(bom: dict) -> None:
    components = {c["name"]: c for c in bom["components"]}
    assert set(components) == {"fastapi", "PyYAML", "typing_extensions", "starlette"}
    assert components["PyYAML"]["purl"] == "pkg:pypi/pyyaml@6.0.1"
    assert components["typing_extensions"]["purl"] == "pkg:pypi/typing-extensions@4.12.2"
    assert all(c["type"] == "library" and c["bom-ref"] for c in components.values())
    assert bom["requirements"] == ["fastapi", "pyyaml", "starlette", "typing-extensions"]
    assert bom["unpinned"] == [
        "requests>=2.31",
        "-e .",
        "private @ https://[redacted]@example.invalid/private.whl",
    ]
    assert bom["evidence"]["tool"] == "cyclonedx-py" and bom["evidence"]["exit_code"] == 0
    assert bom["evidence"]["version"] == version("cyclonedx-bom")  # not "unknown"
    assert "s3cr3t" not in json.dumps(bom)


def test_sbom_names_the_app_and_validates_against_cyclonedx_1_5(bom: dict) -> None:
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.5")
    app = bom["metadata"]["component"]
    assert app["type"] == "application"
    [root] = [d for d in bom["dependencies"] if d["ref"] == app["bom-ref"]]
    assert len(root["dependsOn"]) == 4
    document = {k: v for k, v in bom.items() if k not in ("requirements", "unpinned", "evidence")}
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(document))
    assert error is None, error


def test_the_bom_is_validated_here_not_by_the_tool(bom: dict) -> None:
    assert "--no-validate" in bom["evidence"]["command"]
    assert "schema_problem" not in bom["evidence"]
    document = {k: v for k, v in bom.items() if k not in ("requirements", "unpinned", "evidence")}
    assert bom_problem(document) is None
    broken = {**document, "components": [{"type": "library", "version": "1.0"}]}  # no name
    assert "'name' is a required property" in str(bom_problem(broken))
    assert bom_problem({**document, "specVersion": "9.9"}) == "unknown specVersion '9.9'"


def test_sbom_without_requirements_is_not_a_bom(tmp_path: Path) -> None:
    report = sbom(tmp_path)
    assert "bomFormat" not in report and "components" not in report
    assert report["evidence"]["executed"] is False
    assert "backend/requirements.txt" in report["evidence"]["reason"]
