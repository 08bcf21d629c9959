"""A real HTTP server on 127.0.0.1 that speaks just enough of two model APIs for tests.

It serves OpenAI-compatible ``POST /v1/chat/completions`` (JSON, or server-sent events when
the request says ``stream: true``) and Anthropic ``POST /v1/messages`` (JSON, or its
``message_start`` … ``message_stop`` event stream, replying through the forced tool). The
official SDKs talk to it over real sockets, so what is tested is their wire behaviour and
IdeaMine's handling of it.

It is not a model. Replies come from a script (one ``Scripted`` per request, in order), and
when the script is empty from a ``responder`` function (for instance one that looks the
prompt up in the outputs of an earlier offline run). Token counts are about four characters
a token, like IdeaMine's own estimate. With ``api_key`` set it checks the key and answers 401,
quoting the key it was given (as careless servers do) so tests can check that IdeaMine never
repeats it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTES = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}


@dataclass
class Scripted:
    """One reply. ``content`` is the model's text (for Anthropic: the forced tool's input when
    it is a JSON object, else a text block). ``status`` ≥ 400 sends an error body instead."""

    content: str = "{}"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted failure"
    delay: float = 0.0  # seconds before answering (a hang: longer than the client waits)
    chunk_delay: float = 0.0  # seconds between streamed chunks
    chunks: int = 4  # how many pieces a streamed reply is cut into


@dataclass(frozen=True)
class Received:
    route: str  # "openai" or "anthropic"
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        """The user message (IdeaMine sends the rendered prompt as the last message)."""
        content = self.body["messages"][-1]["content"]
        return content if isinstance(content, str) else json.dumps(content)


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class FaultPlan:
    """A responder that answers the n-th request it sees with ``plan[n]`` when that is a
    fault (a ``Scripted`` error or hang), and with ``answer(request)`` when it is ``None`` or
    the plan is used up. Requests are numbered in arrival order, so a seeded plan injects
    the same faults in the same order whatever the timing; ``served`` counts how far it got.
    """

    def __init__(
        self, answer: Callable[[Received], Scripted], plan: Sequence[Scripted | None]
    ) -> None:
        self.answer = answer
        self.plan = list(plan)
        self.served = 0
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Scripted:
        with self._lock:
            index, self.served = self.served, self.served + 1
        fault = self.plan[index] if index < len(self.plan) else None
        return self.answer(request) if fault is None else fault

    @property
    def done(self) -> bool:
        """Whether every planned reply has been served."""
        with self._lock:
            return self.served >= len(self.plan)


class FakeLLMServer:
    """Start with ``start()`` (or ``with``); ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        responder: Callable[[Received], Scripted] | None = None,
    ) -> None:
        self.api_key = api_key
        self.responder = responder
        self.received: list[Received] = []
        self._scripts: dict[str, list[Scripted]] = {"openai": [], "anthropic": []}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def script(self, route: str, *replies: Scripted) -> None:
        """Queue replies for ``route`` ("openai" or "anthropic"), answered in order."""
        with self._lock:
            self._scripts[route].extend(replies)

    def requests(self, route: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if route is None or r.route == route]

    # -- used by the handler --------------------------------------------------------------

    def next_reply(self, request: Received) -> Scripted:
        with self._lock:
            self.received.append(request)
            queue = self._scripts[request.route]
            if queue:
                return queue.pop(0)
        if self.responder is not None:
            return self.responder(request)
        return Scripted()

    def wait(self, seconds: float) -> None:
        """Sleep, but wake up when the server stops (so a hang never outlives a test)."""
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLMServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_POST(self) -> None:
        route = ROUTES.get(self.path)
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if route is None:
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Received(route=route, headers=headers, body=body)
        reply = self.fake.next_reply(request)
        if reply.delay:
            self.fake.wait(reply.delay)
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if self.fake.api_key is not None and given != self.fake.api_key:
            reply = Scripted(status=401, message=f"Incorrect API key provided: {given}")
        try:
            if reply.status >= 400:
                self._error(route, reply)
            elif body.get("stream"):
                self._stream(route, body, reply)
            elif route == "openai":
                self._json(200, _openai_completion(body, reply.content))
            else:
                self._json(200, _anthropic_message(body, reply.content))
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up waiting (a hang longer than its timeout)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, route: str, reply: Scripted) -> None:
        kind = {401: "authentication_error", 429: "rate_limit_error"}.get(reply.status, "api_error")
        if route == "openai":
            payload: dict[str, Any] = {"error": {"message": reply.message, "type": kind}}
        else:
            payload = {"type": "error", "error": {"type": kind, "message": reply.message}}
        self._json(reply.status, payload, reply.headers)

    def _stream(self, route: str, body: dict[str, Any], reply: Scripted) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        events = _openai_events if route == "openai" else _anthropic_events
        try:
            for index, chunk in enumerate(events(body, reply)):
                if index and reply.chunk_delay:
                    self.fake.wait(reply.chunk_delay)
                self.wfile.write(chunk.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, math.ceil(len(text) / max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _openai_completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    prompt = json.dumps(body["messages"])
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": tokens(prompt),
            "completion_tokens": tokens(content),
            "total_tokens": tokens(prompt) + tokens(content),
        },
    }


def _openai_events(body: dict[str, Any], reply: Scripted) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    for piece in _pieces(reply.content, reply.chunks):
        yield chunk({"content": piece}, None)
    yield chunk({}, "stop")
    usage = _openai_completion(body, reply.content)["usage"]
    tail = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0}
    tail |= {"model": body["model"], "choices": [], "usage": usage}
    yield f"data: {json.dumps(tail)}\n\n"
    yield "data: [DONE]\n\n"


def _tool_input(content: str) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _anthropic_message(body: dict[str, Any], content: str) -> dict[str, Any]:
    tool = _tool_input(content) if body.get("tools") else None
    block: dict[str, Any] = (
        {"type": "tool_use", "id": "toolu_fake", "name": body["tools"][0]["name"], "input": tool}
        if tool is not None
        else {"type": "text", "text": content}
    )
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [block],
        "stop_reason": "tool_use" if tool is not None else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": tokens(json.dumps(body["messages"])),
            "output_tokens": tokens(content),
        },
    }


def _anthropic_events(body: dict[str, Any], reply: Scripted) -> Iterator[str]:
    def event(name: str, payload: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n"

    whole = _anthropic_message(body, reply.content)
    block = whole["content"][0]
    start = {**whole, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": whole["usage"]["input_tokens"], "output_tokens": 1}
    yield event("message_start", {"message": start})
    is_tool = block["type"] == "tool_use"
    empty = {**block, "input": {}} if is_tool else {"type": "text", "text": ""}
    yield event("content_block_start", {"index": 0, "content_block": empty})
    for piece in _pieces(reply.content, reply.chunks):
        delta = (
            {"type": "input_json_delta", "partial_json": piece}
            if is_tool
            else {"type": "text_delta", "text": piece}
        )
        yield event("content_block_delta", {"index": 0, "delta": delta})
    yield event("content_block_stop", {"index": 0})
    yield event(
        "message_delta",
        {
            "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": whole["usage"]["output_tokens"]},
        },
    )
    yield event("message_stop", {})
