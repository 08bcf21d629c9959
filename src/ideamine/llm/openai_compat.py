"""``openai``: any OpenAI-compatible chat-completions endpoint through the official SDK.

OpenAI itself, or a local server by base URL: Ollama (``http://localhost:11434/v1``), vLLM,
llama.cpp's server, LM Studio. The base URL comes from ``pipeline.yaml``
(``providers.openai.base_url``), else ``$OPENAI_BASE_URL``, else OpenAI. The key comes from the
variable named by ``providers.openai.api_key_env`` (default ``OPENAI_API_KEY``); a local
server that needs no key gets a placeholder.

Structured output: ``response_format`` ``json_schema`` (default) or ``json_object``, or
``prompt`` (the schema only in the system message) for servers that support neither. Replies
that may be long are streamed, with progress reported as text arrives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ideamine.config.model import ProviderSpec
from ideamine.llm.base import ModelRequest, ModelResponse, Progress, estimate_tokens
from ideamine.llm.failures import ErrorClass, ProviderError
from ideamine.llm.sdk import Identity, ProgressThrottle, import_sdk, translate_error

__all__ = ["OpenAIProvider", "system_message"]

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
LOCAL_KEY = "not-needed"  # local servers ignore the key, but the SDK insists on one


def system_message(request: ModelRequest, *, with_schema: bool) -> str:
    """The instructions every structured call carries."""
    text = (
        f"You are {request.agent} in the IdeaMine pipeline. Reply with exactly one JSON "
        "object and nothing else: no prose, no Markdown fences."
    )
    if with_schema:
        text += " The object must validate against this JSON Schema:\n" + json.dumps(
            request.schema, sort_keys=True
        )
    return text


class OpenAIProvider:
    """``ModelProvider`` for OpenAI-compatible endpoints."""

    name = "openai"

    def __init__(self, spec: ProviderSpec, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.spec = spec
        self.base_url = spec.base_url or env.get(BASE_URL_ENV) or None
        self.key_env = spec.api_key_env or DEFAULT_KEY_ENV
        key = env.get(self.key_env, "")
        self._key = key or (
            LOCAL_KEY if self.base_url and "openai.com" not in self.base_url else ""
        )
        self._client: Any = None
        self._sdk: ModuleType | None = None

    @property
    def key_problem(self) -> str | None:
        """Why no call can succeed (no key), or ``None``."""
        return None if self._key else f"${self.key_env} is not set"

    def _connect(self) -> tuple[ModuleType, Any]:
        if self._sdk is None:
            self._sdk = import_sdk("openai", "openai:")
            self._client = self._sdk.AsyncOpenAI(
                api_key=self._key,
                base_url=self.base_url,
                max_retries=0,  # IdeaMine's retry policy decides, not the SDK's
                timeout=self.spec.request_timeout_seconds or 600.0,
            )
        return self._sdk, self._client

    async def complete(
        self, request: ModelRequest, progress: Progress | None = None
    ) -> ModelResponse:
        who = Identity(
            agent=request.agent,
            provider=self.name,
            model=request.model,
            key_env=self.key_env,
            key=self._key,
        )
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
                return await self._stream(client, request, progress)
            return await self._once(client, request)
        except sdk.OpenAIError as exc:
            error = translate_error(sdk, exc, who)
            if error is None:
                raise
            raise error from None  # the SDK error may quote the request; keep it out

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        mode = self.spec.structured_output or "json_schema"
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": [
                {
                    "role": "system",
                    "content": system_message(request, with_schema=mode != "json_schema"),
                },
                {"role": "user", "content": request.prompt},
            ],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": self.spec.request_timeout_seconds or request.timeout_seconds,
        }
        if mode == "json_schema":
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": dict(request.schema), "strict": False},
            }
        elif mode == "json_object":
            arguments["response_format"] = {"type": "json_object"}
        return arguments

    async def _once(self, client: Any, request: ModelRequest) -> ModelResponse:
        completion = await client.chat.completions.create(**self._arguments(request))
        text = (completion.choices[0].message.content or "") if completion.choices else ""
        return _response(request, text, completion.usage)

    async def _stream(
        self, client: Any, request: ModelRequest, progress: Progress | None
    ) -> ModelResponse:
        stream = await client.chat.completions.create(
            **self._arguments(request), stream=True, stream_options={"include_usage": True}
        )
        throttle = ProgressThrottle(progress)
        parts: list[str] = []
        usage = None
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
                    await throttle.received(parts[-1])
        return _response(request, "".join(parts), usage)


def _response(request: ModelRequest, text: str, usage: Any) -> ModelResponse:
    """Tokens as the server counted them; estimated when it did not say."""
    tokens_in = getattr(usage, "prompt_tokens", None) or estimate_tokens(request.prompt)
    tokens_out = getattr(usage, "completion_tokens", None) or estimate_tokens(text)
    return ModelResponse(text=text, tokens_in=int(tokens_in), tokens_out=int(tokens_out))
