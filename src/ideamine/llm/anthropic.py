"""``anthropic``: Claude models through the official SDK's Messages API.

Structured output uses tool use: the agent's schema is the ``input_schema`` of one tool the
model is made to call (``tool_choice``), and the tool input is the reply. ``structured_output:
prompt`` instead asks for JSON in the system message. The key comes from the variable named
by ``providers.anthropic.api_key_env`` (default ``ANTHROPIC_API_KEY``), the base URL from
``providers.anthropic.base_url`` or ``$ANTHROPIC_BASE_URL``. Long replies are streamed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ideamine.canonical import canonical_json
from ideamine.config.model import ProviderSpec
from ideamine.llm.base import ModelRequest, ModelResponse, Progress, estimate_tokens
from ideamine.llm.failures import ErrorClass, ProviderError
from ideamine.llm.openai_compat import system_message
from ideamine.llm.sdk import Identity, ProgressThrottle, import_sdk, translate_error

__all__ = ["TOOL_NAME", "AnthropicProvider"]

DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
TOOL_NAME = "record_output"


class AnthropicProvider:
    """``ModelProvider`` for the Anthropic Messages API."""

    name = "anthropic"

    def __init__(self, spec: ProviderSpec, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.spec = spec
        self.base_url = spec.base_url or env.get(BASE_URL_ENV) or None
        self.key_env = spec.api_key_env or DEFAULT_KEY_ENV
        self._key = env.get(self.key_env, "")
        self._client: Any = None
        self._sdk: ModuleType | None = None

    @property
    def key_problem(self) -> str | None:
        """Why no call can succeed (no key), or ``None``."""
        return None if self._key else f"${self.key_env} is not set"

    def _connect(self) -> tuple[ModuleType, Any]:
        if self._sdk is None:
            self._sdk = import_sdk("anthropic", "anthropic:")
            self._client = self._sdk.AsyncAnthropic(
                api_key=self._key,
                base_url=self.base_url,
                max_retries=0,  # IdeaMine's retry policy decides, not the SDK's
                timeout=self.spec.request_timeout_seconds or 600.0,
            )
        return self._sdk, self._client

    async def complete(
        self, request: ModelRequest, progress: Progress | None = None
    ) -> ModelResponse:
        if not self._key:
            raise ProviderError(
                request.agent,
                provider=self.name,
                model=request.model,
                error_class=ErrorClass.AUTH,
                detail=f"no API key: ${self.key_env} is not set",
                key_env=self.key_env,
            )
        sdk, client = self._connect()
        try:
            if request.max_tokens >= self.spec.stream_min_tokens:
                message = await self._stream(client, request, progress)
            else:
                message = await client.messages.create(**self._arguments(request))
        except sdk.AnthropicError as exc:
            who = Identity(
                agent=request.agent,
                provider=self.name,
                model=request.model,
                key_env=self.key_env,
                key=self._key,
            )
            error = translate_error(sdk, exc, who)
            if error is None:
                raise
            raise error from None  # the SDK error may quote the request; keep it out
        return _response(request, message)

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        use_tool = (self.spec.structured_output or "tool") == "tool"
        arguments: dict[str, Any] = {
            "model": request.model,
            "system": system_message(request, with_schema=not use_tool),
            "messages": [{"role": "user", "content": request.prompt}],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": self.spec.request_timeout_seconds or request.timeout_seconds,
        }
        if use_tool:
            arguments["tools"] = [
                {
                    "name": TOOL_NAME,
                    "description": "Record the structured output of this task.",
                    "input_schema": dict(request.schema),
                }
            ]
            arguments["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        return arguments

    async def _stream(self, client: Any, request: ModelRequest, progress: Progress | None) -> Any:
        throttle = ProgressThrottle(progress)
        async with client.messages.stream(**self._arguments(request)) as stream:
            async for event in stream:
                if event.type == "text":
                    await throttle.received(event.text)
                elif event.type == "input_json":
                    await throttle.received(event.partial_json)
            return await stream.get_final_message()


def _response(request: ModelRequest, message: Any) -> ModelResponse:
    """The reply text: the tool input as canonical JSON, else the text blocks joined."""
    blocks = list(message.content or [])
    tool = next((b for b in blocks if b.type == "tool_use" and b.name == TOOL_NAME), None)
    if tool is not None:
        text = canonical_json(tool.input)
    else:
        text = "".join(b.text for b in blocks if b.type == "text")
    usage = message.usage
    return ModelResponse(
        text=text,
        tokens_in=int(getattr(usage, "input_tokens", 0) or estimate_tokens(request.prompt)),
        tokens_out=int(getattr(usage, "output_tokens", 0) or estimate_tokens(text)),
    )
