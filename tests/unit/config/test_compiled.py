"""The compiled form of a pipeline: exact round trips, refusals, and the check that a
configuration folder still reads as pinned (``ideamine.config.compiled``)."""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import pytest
import yaml
from tests.support.configs import SPEC_DAG, write_callable_pipeline

from ideamine.config import CONFIG_ENV, compiled, loader
from ideamine.config.compiled import (
    CompiledFormError,
    StaleFormError,
    decode,
    encode,
    pinned_pipeline,
    unchanged_pipeline,
)
from ideamine.config.loader import load_pinned, load_pipeline
from ideamine.config.model import PipelineSpec


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The SPEC's DAG, two Python agents a phase, a loop; every artifact has a schema file."""
    return write_callable_pipeline(
        tmp_path / "config", SPEC_DAG, agents_per_phase=2, parallelism={"story-loop": "iterative"}
    )


def _unpacked(packed: bytes) -> dict[str, object]:
    whole = json.loads(zlib.decompress(packed))
    assert isinstance(whole, dict)
    return whole


def _packed(whole: object) -> bytes:
    return zlib.compress(json.dumps(whole).encode())


def test_the_shipped_pipeline_survives_the_round_trip_without_its_texts() -> None:
    pipeline = load_pipeline(None)
    packed = encode(pipeline)

    assert packed is not None
    assert decode(packed, pipeline.files) == pipeline
    assert "files" not in _unpacked(packed)["pipeline"]  # type: ignore[operator]
    # the shipped pipeline's optional schemas/ files it looked for and did not find
    assert "schemas/A11yAudit.yaml" in pipeline.absent
    assert not pipeline.absent & pipeline.files.keys()


def test_a_folder_pipeline_survives_the_round_trip(folder: Path) -> None:
    pipeline = load_pipeline(folder)
    packed = encode(pipeline)

    assert packed is not None
    rebuilt = decode(packed, pipeline.files)
    assert rebuilt == pipeline
    assert rebuilt.phase("story-loop").loop == pipeline.phase("story-loop").loop is not None
    assert type(rebuilt.phase("qa").fan_out.kind) is type(pipeline.phase("qa").fan_out.kind)


def test_encoding_is_kept_for_the_same_pipeline_object(folder: Path) -> None:
    pipeline = load_pipeline(folder)
    assert encode(pipeline) is encode(pipeline)


def test_a_model_override_has_no_compiled_form(folder: Path) -> None:
    """``--model`` is pinned by the model agents, not the manifest: the pinned texts alone
    would rebuild the pipeline without it."""
    assert encode(load_pipeline(folder).with_model("offline:other")) is None


def test_a_value_json_does_not_carry_exactly_leaves_no_compiled_form(folder: Path) -> None:
    """A YAML date in an output schema would come back as a string: no compiled form, and
    such a run resumes from its texts."""
    agent = folder / "agents" / "QaAgent0.yaml"
    document = yaml.safe_load(agent.read_text())
    document["output_schema"]["examples"] = [{"value": {"since": "DATE"}}]
    agent.write_text(yaml.safe_dump(document).replace("DATE", "2024-01-01"))
    pipeline = load_pipeline(folder)
    example = pipeline.agents["QaAgent0"].output_schema["examples"][0]
    assert type(example["value"]["since"]).__name__ == "date"  # the loader kept the date

    assert encode(pipeline) is None


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda packed: b"not zlib", "damaged"),
        (lambda packed: zlib.compress(b"[1, 2]"), "damaged: an object expected"),
        (lambda packed: zlib.compress(b"{not json"), "damaged"),
        (lambda packed: _packed({**_unpacked(packed), "format": 99}), "another version"),
        (lambda packed: _packed({**_unpacked(packed), "code": "0" * 64}), "another version"),
        (
            lambda packed: _packed(
                {**_unpacked(packed), "pipeline": {**_unpacked(packed)["pipeline"], "extra": 1}}  # type: ignore[dict-item]
            ),
            "PipelineSpec has other fields",
        ),
        (
            lambda packed: _packed(
                {**_unpacked(packed), "pipeline": {**_unpacked(packed)["pipeline"], "phases": 7}}  # type: ignore[dict-item]
            ),
            "a list expected",
        ),
    ],
)
def test_a_form_that_cannot_be_used_is_refused_with_its_reason(
    folder: Path, damage: object, reason: str
) -> None:
    pipeline = load_pipeline(folder)
    packed = encode(pipeline)
    assert packed is not None

    with pytest.raises(CompiledFormError, match=reason):
        decode(damage(packed), pipeline.files)  # type: ignore[operator]


def _pinned(folder: Path) -> tuple[PipelineSpec, bytes]:
    pipeline = load_pipeline(folder)
    packed = encode(pipeline)
    assert packed is not None
    return pipeline, packed


def test_an_unchanged_folder_gives_the_pipeline(folder: Path) -> None:
    pipeline, packed = _pinned(folder)
    assert unchanged_pipeline(packed, pipeline.files, folder, run_id="r") == pipeline


def test_the_folder_comes_from_the_environment_when_the_run_names_none(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, packed = _pinned(folder)
    monkeypatch.setenv(CONFIG_ENV, str(folder))
    assert unchanged_pipeline(packed, pipeline.files, None, run_id="r") == pipeline
    monkeypatch.delenv(CONFIG_ENV)
    assert unchanged_pipeline(packed, pipeline.files, None, run_id="r") is None


def test_a_changed_text_means_loading_again(folder: Path) -> None:
    """A comment changes no manifest entry, but the texts differ: the caller loads them."""
    pipeline, packed = _pinned(folder)
    phase = folder / "phases" / "qa.yaml"
    phase.write_text(phase.read_text() + "# a comment\n")
    assert unchanged_pipeline(packed, pipeline.files, folder, run_id="r") is None


def test_a_file_the_load_did_not_find_appearing_means_loading_again(tmp_path: Path) -> None:
    """An optional schema file the first load looked for and did not find changes what a
    load reads."""
    folder = write_callable_pipeline(tmp_path / "config", {"intake": []}, agents_per_phase=1)
    (folder / "schemas" / "IntakeResult.yaml").unlink()
    pipeline, packed = _pinned(folder)
    assert pipeline.absent == {"schemas/IntakeResult.yaml"}
    assert unchanged_pipeline(packed, pipeline.files, folder, run_id="r") == pipeline

    (folder / "schemas" / "IntakeResult.yaml").write_text("type: object\n")
    assert unchanged_pipeline(packed, pipeline.files, folder, run_id="r") is None


@pytest.mark.parametrize("change", ["removed", "not UTF-8", "folder gone"])
def test_an_unreadable_folder_means_loading_again(folder: Path, change: str) -> None:
    pipeline, packed = _pinned(folder)
    agent = folder / "agents" / "QaAgent1.yaml"
    if change == "removed":
        agent.unlink()
    elif change == "not UTF-8":
        agent.write_bytes(b"\xff\xfe")
    else:
        folder.rename(folder.with_name("moved"))
    assert unchanged_pipeline(packed, pipeline.files, folder, run_id="r") is None


def test_no_form_or_a_damaged_one_means_loading_again_and_damage_is_logged(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, _ = _pinned(folder)
    assert unchanged_pipeline(None, pipeline.files, folder, run_id="r") is None
    assert not caplog.records

    with caplog.at_level(logging.WARNING, logger="ideamine.config.compiled"):
        assert unchanged_pipeline(b"junk", pipeline.files, folder, run_id="r7") is None
    assert "run r7: the compiled form of its configuration is damaged" in caplog.text


def test_a_workers_pipeline_comes_from_the_form_whatever_the_folder_holds(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker drives the pinned texts: the form stands for them even once the folder
    changed or is gone; without a usable form it loads the texts."""
    pipeline, packed = _pinned(folder)
    folder.rename(folder.with_name("moved"))

    assert pinned_pipeline(None, pipeline.files, run_id="r") == pipeline
    with monkeypatch.context() as patched:
        patched.setattr(loader, "load_pinned", _refused)
        from_form = pinned_pipeline(packed, pipeline.files, run_id="r")
    assert from_form == load_pinned(pipeline.files) == pipeline


def _refused(files: object) -> PipelineSpec:
    raise AssertionError("the texts were loaded although the compiled form could be used")


def test_a_stale_form_is_loaded_around_quietly_and_a_damaged_one_with_a_warning(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, packed = _pinned(folder)
    stale = _packed({**_unpacked(packed), "code": "0" * 64})
    with pytest.raises(StaleFormError):
        decode(stale, pipeline.files)

    with caplog.at_level(logging.WARNING, logger="ideamine.config.compiled"):
        assert pinned_pipeline(stale, pipeline.files, run_id="r1") == pipeline
        assert not caplog.records
        assert pinned_pipeline(packed[:-9], pipeline.files, run_id="r2") == pipeline
    assert "run r2: the compiled form of its configuration is damaged" in caplog.text


def test_the_code_fingerprint_covers_the_config_code_and_its_parsers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every module of ``ideamine.config`` (a new one too), ``canonical.py`` and the version
    files of pydantic and PyYAML; taken on import, so later edits on disk do not change it."""
    assert compiled._fingerprint() == compiled.FINGERPRINT
    config = Path(compiled.__file__).parent
    copied = tmp_path / "ideamine" / "config"
    copied.mkdir(parents=True)
    for source in config.glob("*.py"):
        (copied / source.name).write_bytes(source.read_bytes())
    (copied.parent / "canonical.py").write_bytes((config.parent / "canonical.py").read_bytes())
    monkeypatch.setattr(compiled, "__file__", str(copied / "compiled.py"))
    assert compiled._fingerprint() == compiled.FINGERPRINT

    (copied / "helpers.py").write_text("X = 1\n")
    assert compiled._fingerprint() != compiled.FINGERPRINT
    (copied / "helpers.py").unlink()
    (copied.parent / "canonical.py").write_text("# another canonical form\n")
    assert compiled._fingerprint() != compiled.FINGERPRINT
