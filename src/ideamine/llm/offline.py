"""The deterministic offline model: renders each agent's ``offline`` template.

It never calls a network and always gives the same output for the same context, so a run on
the offline model is reproducible byte for byte. Every call is recorded like any other, with
provider ``offline``, so its artifacts are clearly labelled in their provenance.
"""

from __future__ import annotations

from ideamine.agents.render import render_offline
from ideamine.canonical import canonical_json
from ideamine.errors import AgentError
from ideamine.llm.base import ModelRequest, ModelResponse, Progress, estimate_tokens

__all__ = ["OfflineProvider"]


class OfflineProvider:
    """``ModelProvider`` that renders templates instead of sampling a model."""

    name = "offline"

    async def complete(
        self, request: ModelRequest, progress: Progress | None = None
    ) -> ModelResponse:
        if request.offline_template is None:
            raise AgentError(
                request.agent,
                "has no `offline` template",
                hint="add one to the agent's YAML or configure a real model",
            )
        output = render_offline(request.offline_template, request.context, agent=request.agent)
        text = canonical_json(output)
        return ModelResponse(
            output=output,
            text=text,
            tokens_in=estimate_tokens(request.prompt),
            tokens_out=estimate_tokens(text),
        )
