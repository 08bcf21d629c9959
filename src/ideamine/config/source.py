"""Reading YAML files while remembering on which line each value stood.

Validation errors are reported as ``file:line: field: problem``; this module keeps the map
from a value's location (a tuple of keys and list indexes) to its line number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ideamine.errors import ConfigError, ConfigProblem

__all__ = ["SAFE_LOADER", "SourceFile", "parse_yaml", "read_text", "read_yaml"]

Loc = tuple[str | int, ...]
# libyaml's parser when PyYAML was built with it (ten times faster; same nodes and marks)
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A parsed YAML document plus the line of every value in it."""

    path: str  # as shown in messages
    data: object
    lines: dict[Loc, int]
    text_lines: dict[Loc, int] = field(default_factory=dict)  # where a scalar's text starts

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest known prefix of ``loc`` (1 when nothing matches)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1

    def problem(self, loc: Loc, problem: str, hint: str = "") -> ConfigProblem:
        """A ``ConfigProblem`` located at ``loc`` in this file."""
        field = ".".join(str(part) for part in loc) or "(file)"
        return ConfigProblem(
            file=self.path, line=self.line_of(loc), field=field, problem=problem, hint=hint
        )


def read_text(path: Path, shown_as: str) -> str:
    """The UTF-8 text of a config file.

    Raises:
        ConfigError: the file cannot be read or is not UTF-8.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    file=shown_as,
                    line=None,
                    field="(file)",
                    problem=f"not UTF-8 text ({exc.reason})",
                    hint="save the file as UTF-8",
                )
            ]
        ) from exc
    except OSError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    file=shown_as,
                    line=None,
                    field="(file)",
                    problem=f"cannot read: {exc.strerror}",
                    hint="check the path and its permissions",
                )
            ]
        ) from exc
    return text


def read_yaml(path: Path, shown_as: str) -> SourceFile:
    """Parse ``path`` into data with a line map.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8, or is not valid YAML.
    """
    return parse_yaml(read_text(path, shown_as), shown_as)


def parse_yaml(text: str, shown_as: str) -> SourceFile:
    """Parse YAML ``text`` (shown in messages as ``shown_as``) into data with a line map.

    Raises:
        ConfigError: the text is not valid YAML or repeats a key.
    """
    try:
        node = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(
            [
                ConfigProblem(
                    file=shown_as,
                    line=line,
                    field="(file)",
                    problem=f"not valid YAML: {getattr(exc, 'problem', exc)}",
                    hint="check indentation and quoting near that line",
                )
            ]
        ) from exc
    source = SourceFile(path=shown_as, data=None, lines={}, text_lines={})
    duplicates: list[ConfigProblem] = []
    data = _convert(node, (), source, duplicates) if node is not None else None
    if duplicates:
        raise ConfigError(duplicates)
    return SourceFile(path=shown_as, data=data, lines=source.lines, text_lines=source.text_lines)


def _convert(
    node: yaml.Node, loc: Loc, source: SourceFile, duplicates: list[ConfigProblem]
) -> object:
    source.lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[object, object] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            key_loc = (*loc, str(key))
            if key in result:
                duplicates.append(
                    ConfigProblem(
                        file=source.path,
                        line=key_node.start_mark.line + 1,
                        field=".".join(map(str, key_loc)),
                        problem=f"duplicate key (first at line {source.lines[key_loc]})",
                        hint="YAML keys must be unique; merge the two blocks",
                    )
                )
                continue
            result[key] = _convert(value_node, key_loc, source, duplicates)
            source.lines[key_loc] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*loc, index), source, duplicates)
            for index, item in enumerate(node.value)
        ]
    # A block scalar (| or >) starts its text on the line after its indicator.
    block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
    source.text_lines[loc] = node.start_mark.line + 1 + (1 if block else 0)
    return _scalar(node)


def _scalar(node: yaml.Node) -> object:
    """Construct a leaf value with the safe loader's own resolution rules (a string, nearly
    every leaf of a config, is its text: no constructor built for it)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG:
        return node.value
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
