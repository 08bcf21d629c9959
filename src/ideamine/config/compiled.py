"""A run's pipeline in compiled form: the frozen ``PipelineSpec`` as zlib-compressed JSON
without the texts (72 KB for the shipped pipeline, whose texts take 265 KB), stored with the
run's pinned texts, so that ``ideamine resume`` can drive a run whose configuration folder is
unchanged, text for text, without parsing YAML or importing the validation models again
(~80 ms of a resume's start-up), and workers can build a run's pipeline without them.

The compiled form is a cache of the pinned texts, never a second source of truth:

- it is written only for a pipeline that survives the round trip exactly
  (``decode(encode(p)) == p``): a YAML date in a schema, say, leaves a run without one;
- it carries a fingerprint of the code that builds pipelines from texts (``config/*.py``,
  ``canonical.py``, and the versions of pydantic and PyYAML), taken when this module is
  imported, so a compiled form written by other code is not used;
- it is used only while every pinned file still reads as pinned, and every file the load
  looked for and did not find (an optional ``schemas/`` file) is still absent.

In every other case the caller loads the texts as before (``loader.load_pipeline``).
This module imports neither pydantic nor YAML.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib.util
import json
import logging
import types
import typing
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ideamine.config import config_file, overlay_folder
from ideamine.config import model as m

if TYPE_CHECKING:
    from ideamine.stores.base import Store

__all__ = ["decode", "encode", "pinned_pipeline", "run_pipeline", "unchanged_pipeline"]

log = logging.getLogger("ideamine.config.compiled")

FORMAT = 1
_KEPT = 4  # compiled forms kept per process (``encode``), by pipeline identity


class CompiledFormError(ValueError):
    """A compiled form that cannot be used: damaged, or (``StaleFormError``) written by
    other code."""


class StaleFormError(CompiledFormError):
    """A compiled form written by another format or version of the config code: expected
    after an upgrade, so not worth a warning."""


def encode(pipeline: m.PipelineSpec) -> bytes | None:
    """The compiled form of ``pipeline``; ``None`` when it cannot stand for the pinned texts
    (a ``--model`` override, a value JSON does not carry exactly, or no source to
    fingerprint). The last few results are kept: a process creating runs on one pipeline
    encodes it once."""
    kept = _encoded.get(id(pipeline))
    if kept is not None and kept[0] is pipeline:
        return kept[1]
    packed = _encode(pipeline)
    if len(_encoded) >= _KEPT:
        del _encoded[next(iter(_encoded))]
    _encoded[id(pipeline)] = (pipeline, packed)
    return packed


_encoded: dict[int, tuple[m.PipelineSpec, bytes | None]] = {}


def _encode(pipeline: m.PipelineSpec) -> bytes | None:
    fingerprint = FINGERPRINT
    if pipeline.model_override or fingerprint is None:
        log.debug("no compiled form: a --model override, or no code to fingerprint")
        return None
    whole: dict[str, object] = {"format": FORMAT, "code": fingerprint}
    try:
        whole["pipeline"] = {  # without its texts, stored beside it
            f.name: _plain(getattr(pipeline, f.name))
            for f in dataclasses.fields(pipeline)
            if f.name != "files"
        }
        text = json.dumps(whole, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        log.debug("no compiled form: %s", exc)
        return None
    packed = zlib.compress(text.encode("utf-8"), 6)
    try:
        rebuilt = decode(packed, pipeline.files)
    except CompiledFormError as exc:
        log.debug("no compiled form: it does not decode (%s)", exc)
        return None
    if rebuilt != pipeline:
        log.debug("no compiled form: the pipeline does not survive the round trip")
        return None
    return packed


def decode(packed: bytes, files: Mapping[str, str]) -> m.PipelineSpec:
    """The pipeline a compiled form holds, with ``files``, the texts it was built from (the
    run's pinned texts: the compiled form does not repeat them).

    Raises:
        StaleFormError: another format, or another version of the code.
        CompiledFormError: damaged.
    """
    try:
        loaded = json.loads(zlib.decompress(packed))
    except (zlib.error, ValueError, TypeError, RecursionError) as exc:
        raise CompiledFormError(f"damaged: {exc}") from exc
    whole = _dict(loaded)
    if whole.get("format") != FORMAT or whole.get("code") != FINGERPRINT:
        raise StaleFormError("written by another version of IdeaMine's config code")
    try:
        pipeline = _decoder(m.PipelineSpec)({**_dict(whole.get("pipeline")), "files": files})
    except CompiledFormError:
        raise
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise CompiledFormError(f"damaged: {exc}") from exc
    if not isinstance(pipeline, m.PipelineSpec):
        raise CompiledFormError("damaged: not a pipeline")
    return pipeline


def unchanged_pipeline(
    compiled: bytes | None, files: Mapping[str, str], overlay: Path | None, *, run_id: str
) -> m.PipelineSpec | None:
    """The pipeline of run ``run_id`` from its compiled form, if its configuration folder
    (``overlay``, else ``$IDEAMINE_CONFIG``, over the shipped defaults) still holds the
    pinned ``files`` text for text; ``None`` when the caller must load the texts instead."""
    pipeline = _usable(compiled, files, run_id)
    if pipeline is None or not _reads_as_pinned(overlay_folder(overlay), pipeline):
        return None
    return pipeline


def pinned_pipeline(
    compiled: bytes | None, files: Mapping[str, str], *, run_id: str
) -> m.PipelineSpec:
    """The pipeline of a run's pinned texts (what a worker drives, whatever its folder now
    holds): from the compiled form when it can be used, else by loading ``files``.

    Raises:
        ConfigError: the texts do not validate (``loader.load_pinned``).
    """
    pipeline = _usable(compiled, files, run_id)
    if pipeline is not None:
        return pipeline
    from ideamine.config.loader import load_pinned  # noqa: PLC0415

    return load_pinned(files)


async def run_pipeline(store: Store, run_id: str) -> m.PipelineSpec:
    """The pipeline run ``run_id`` is pinned to (``pinned_pipeline`` of its stored config).

    Raises:
        RunNotFoundError: no such run. ConfigError: its texts no longer validate.
    """
    files, packed = await store.compiled_config(run_id)
    return pinned_pipeline(packed, files, run_id=run_id)


def _usable(compiled: bytes | None, files: Mapping[str, str], run_id: str) -> m.PipelineSpec | None:
    """The pipeline ``compiled`` holds, or ``None`` (no form; another version's, or a
    damaged one, which is logged)."""
    if compiled is None:
        return None
    try:
        return decode(compiled, files)
    except StaleFormError as exc:
        log.debug("run %s: the compiled form of its configuration is %s", run_id, exc)
    except CompiledFormError as exc:
        log.warning(
            "run %s: the compiled form of its configuration is %s; loading its texts", run_id, exc
        )
    return None


def _reads_as_pinned(overlay: Path | None, pipeline: m.PipelineSpec) -> bool:
    if overlay is not None and not overlay.is_dir():
        return False  # the full load reports it
    for relative, text in pipeline.files.items():
        path = config_file(overlay, relative)
        try:
            if path is None or path.read_text(encoding="utf-8") != text:
                return False
        except (OSError, UnicodeDecodeError):
            return False  # the full load reports it
    return all(config_file(overlay, relative) is None for relative in pipeline.absent)


# -- the JSON form ---------------------------------------------------------------------------


def _plain(value: object) -> object:
    """``value`` in JSON's terms; ``TypeError`` for anything JSON does not carry exactly."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, frozenset):
        return sorted(_plain(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("a mapping key that is not a string")
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _same(value: object) -> object:
    return value


@functools.cache
def _decoder(hint: Any) -> Callable[[Any], Any]:  # noqa: PLR0911
    """How to rebuild a value of type ``hint`` (a ``config.model`` annotation) from JSON."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        decode_inner = _decoder(inner)
        return lambda v: None if v is None else decode_inner(v)
    if origin is tuple:
        item = _decoder(args[0])
        return lambda v: tuple(item(x) for x in _list(v))
    if origin is frozenset:
        item = _decoder(args[0])
        return lambda v: frozenset(item(x) for x in _list(v))
    if origin in (Mapping, dict):
        if args[1] is Any:
            return _same
        item = _decoder(args[1])
        return lambda v: {k: item(x) for k, x in _dict(v).items()}
    if hint in (str, int, float, bool):
        return _same
    raise CompiledFormError(f"no decoder for {hint!r}")


def _dataclass_decoder(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls, vars(m))
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls)]

    def build(value: object) -> object:
        data = _dict(value)
        if data.keys() != {name for name, _ in fields}:
            raise CompiledFormError(f"damaged: {cls.__name__} has other fields")
        return cls(**{name: rebuild(data[name]) for name, rebuild in fields})

    return build


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise CompiledFormError(f"damaged: a list expected, found {type(value).__name__}")
    return value


def _dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CompiledFormError(f"damaged: an object expected, found {type(value).__name__}")
    return value


def _fingerprint() -> str | None:
    """SHA-256 over the source of the modules that decide what a pipeline built from texts
    holds (every ``config/*.py``, ``canonical.py``) and the version files of pydantic and
    PyYAML (found, not imported); ``None`` if any is missing (an install without sources)."""
    here = Path(__file__).parent
    sources = [*sorted(here.glob("*.py")), here.parent / "canonical.py"]
    for package, name in (("pydantic", "version.py"), ("yaml", "__init__.py")):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return None
        sources.append(Path(spec.origin).parent / name)
    digest = hashlib.sha256()
    try:
        for path in sources:
            digest.update(f"{path.name}\0".encode())
            digest.update(path.read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


# Taken once, on import: the code this process runs, even if an upgrade replaces the files.
FINGERPRINT = _fingerprint()
