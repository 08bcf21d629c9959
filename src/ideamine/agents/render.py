"""Jinja rendering of agent prompts, offline templates and loop conditions.

Templates run in an immutable sandbox with ``StrictUndefined``: a template that names a value
the context does not have fails loudly instead of rendering an empty string. The filters and
globals come from :mod:`ideamine.agents.textkit`, so every template sees the same helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ideamine.agents import textkit
from ideamine.config.source import SAFE_LOADER
from ideamine.errors import TemplateRenderError

__all__ = ["evaluate_condition", "render_offline", "render_prompt"]


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(textkit.FILTERS)
    env.globals.update(textkit.GLOBALS)
    return env


@lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return _environment().from_string(source)


def render_prompt(template: str, context: Mapping[str, object], *, agent: str) -> str:
    """Render an agent's prompt template over the run context.

    Raises:
        TemplateRenderError: the template does not compile or names a missing value.
    """
    try:
        return str(_compile(template).render(**context))
    except TemplateError as exc:
        raise TemplateRenderError(agent=agent, part="prompt", detail=str(exc)) from exc


def render_offline(template: str, context: Mapping[str, object], *, agent: str) -> object:
    """Render an agent's ``offline`` template and parse the result as YAML (JSON is YAML too).

    Raises:
        TemplateRenderError: the template fails to render, or its output is not valid YAML.
    """
    try:
        text = str(_compile(template).render(**context))
    except TemplateError as exc:
        raise TemplateRenderError(agent=agent, part="offline", detail=str(exc)) from exc
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise TemplateRenderError(
            agent=agent, part="offline", detail=f"rendered text is not valid YAML: {exc}"
        ) from exc


def evaluate_condition(expression: str, context: Mapping[str, object], *, where: str) -> bool:
    """Evaluate a Jinja expression such as a loop's ``until`` to a boolean.

    Raises:
        TemplateRenderError: the expression does not compile or names a missing value.
    """
    try:
        compiled = _environment().compile_expression(expression, undefined_to_none=False)
        return bool(compiled(**context))
    except TemplateError as exc:
        raise TemplateRenderError(agent=where, part="condition", detail=str(exc)) from exc
