"""A real TCP proxy on 127.0.0.1 for chaos tests: clients connect to it instead of to a
server, and the test breaks the network between them on purpose.

It runs an asyncio loop on a thread of its own and forwards bytes both ways. The test can:

- ``refuse()``: close the listening socket (new connections are refused, as by a server
  that is down) and reset every open connection; ``accept()`` listens again on the same port.
- ``blackhole()``: stop passing bytes: open connections stay open but what either side sends
  is swallowed, and new connections are accepted and held without reaching the server (a
  cut network, as far as a client can tell); ``reset()`` then resets every connection (as a
  router that lost its state does) and forwards normally again. ``blackhole(reset_open=True)``
  resets the open connections as the cut begins, so every client connects into the cut;
  ``reset(spare_held=True)`` leaves the connections accepted during the cut held and silent
  for good, as a middlebox that accepted them and then lost its upstream would: only the
  client can give up on them.
- ``silence_replies()``: keep passing what clients send but swallow what the server answers,
  so a statement (a ``COMMIT``) reaches the server and its reply never comes back; ``reset()``
  then resets every connection and forwards both ways again.
- ``strand()``: reset every client connection but leave its server side open and silent, so
  the server's session stays open (a transaction in it stays in progress, a ``COMMIT`` a
  blackhole swallowed never read) until the server ends it; forwards normally again.

Counters (``accepted``, ``dropped``, ``swallowed``) let a test check that a fault really hit
live traffic. Connections are reset with ``SO_LINGER`` 0, so the peers see ``ECONNRESET``
rather than an orderly end of stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TcpProxy"]

T = TypeVar("T")
CHUNK = 65536
CONTROL_TIMEOUT = 30.0  # seconds a control call waits for the proxy's loop


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream one (``None`` while connecting, or for ever
    when the link was accepted during a blackhole and is ``held``)."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    held: bool = False
    pumps: list[asyncio.Task[None]] = field(default_factory=list)


class TcpProxy:
    """Forward ``127.0.0.1:port`` to the upstream address; use with ``with`` (or
    ``start``/``stop``). The control methods are called from any thread."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.accepted = 0  # client connections accepted
        self.dropped = 0  # connections reset by refuse() or reset()
        self.swallowed = 0  # bytes a blackhole kept from their destination
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._blackholed = False
        self._silenced = False  # replies (server to client) are swallowed
        self._stranded: list[asyncio.StreamWriter] = []  # server sides left open (`strand`)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CONTROL_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------

    def refuse(self) -> int:
        """Stop listening (connections are refused) and reset every open connection;
        returns how many were reset."""
        return self._call(self._refuse())

    def accept(self) -> None:
        """Listen again, on the same port."""
        self._call(self._listen())

    def blackhole(self, *, reset_open: bool = False) -> int:
        """Stop passing bytes, holding every connection open; returns how many are open.
        With ``reset_open`` the open connections are reset instead (returns how many), so
        every client has to connect again, into the blackhole."""
        return self._call(self._blackhole(reset_open))

    def silence_replies(self) -> int:
        """Swallow what the server sends from now on, still passing what clients send;
        returns how many connections are open."""
        return self._call(self._silence())

    def reset(self, *, spare_held: bool = False) -> int:
        """Reset every connection (but those accepted during the blackhole if
        ``spare_held``) and forward normally again; returns how many were reset."""
        return self._call(self._reset(spare_held))

    def strand(self) -> int:
        """Reset every client connection, leaving its server side open and unread, and
        forward normally again; returns how many were stranded."""
        return self._call(self._strand())

    def url(self, upstream_url: str) -> str:
        """``upstream_url`` (``postgresql://user@host:port/db``) pointed at this proxy."""
        target = urlsplit(upstream_url)
        users = target.netloc.rpartition("@")[0]
        netloc = f"{users}@127.0.0.1:{self.port}" if users else f"127.0.0.1:{self.port}"
        return urlunsplit(target._replace(netloc=netloc))

    @property
    def held(self) -> int:
        """Connections accepted during a blackhole and still held."""
        return self._call(self._held())

    # -- on the proxy's loop --------------------------------------------------------------

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(CONTROL_TIMEOUT)

    async def _held(self) -> int:
        return sum(1 for link in self._links if link.held)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _refuse(self) -> int:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        dropped = self._abort(lambda link: True)
        if server is not None:
            await server.wait_closed()
        await self._settle(dropped)
        return len(dropped)

    async def _blackhole(self, reset_open: bool) -> int:
        self._blackholed = True
        if not reset_open:
            return len(self._links)
        dropped = self._abort(lambda link: True)
        await self._settle(dropped)
        return len(dropped)

    async def _silence(self) -> int:
        self._silenced = True
        return len(self._links)

    async def _reset(self, spare_held: bool) -> int:
        # no await between choosing the links and forwarding again: a connection accepted
        # meanwhile would be neither reset nor forwarded
        dropped = self._abort(lambda link: not (spare_held and link.held))
        self._blackholed = False
        self._silenced = False
        await self._settle(dropped)
        return len(dropped)

    async def _strand(self) -> int:
        links = list(self._links)
        for link in links:
            self._links.discard(link)
            _reset(link.client)
            if link.server is not None:
                self._stranded.append(link.server)
            for pump in link.pumps:
                pump.cancel()
        self.dropped += len(links)
        self._blackholed = False
        self._silenced = False
        await self._settle(links)
        return len(links)

    async def _shutdown(self) -> None:
        await self._refuse()
        for writer in self._stranded:
            _reset(writer)
        self._stranded.clear()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _abort(self, chosen: Callable[[_Link], bool]) -> list[_Link]:
        """Reset the chosen links at once (no await); their pumps are cancelled."""
        links = [link for link in self._links if chosen(link)]
        for link in links:
            self._end(link, hard=True)
        self.dropped += len(links)
        return links

    def _end(self, link: _Link, *, hard: bool) -> None:
        """End both sides of ``link``: with a reset (a fault), or in order (one side hung
        up, so the other is told the same way)."""
        self._links.discard(link)
        for writer in (link.client, link.server):
            if writer is not None:
                if hard:
                    _reset(writer)
                else:
                    writer.close()
        current = asyncio.current_task()
        for pump in link.pumps:
            if pump is not current:
                pump.cancel()

    async def _settle(self, links: list[_Link]) -> None:
        """Wait for the cancelled pumps of ``links`` to finish."""
        pumps = [pump for link in links for pump in link.pumps]
        pumps = [pump for pump in pumps if pump is not asyncio.current_task()]
        await asyncio.gather(*pumps, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(client=writer)
        self._links.add(link)
        if self._blackholed:  # held: the client thinks it is connected, nothing gets through
            link.held = True
            link.pumps.append(asyncio.create_task(self._swallow(reader, link)))
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            if link in self._links:
                self._end(link, hard=True)
            return
        link.server = upstream_writer
        if link not in self._links:  # reset while connecting
            _reset(upstream_writer)
            return
        link.pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, link, replies=False)),
            asyncio.create_task(self._pump(upstream_reader, writer, link, replies=True)),
        ]

    async def _swallow(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                self.swallowed += len(data)
        if link in self._links:  # the client gave up on it
            self._end(link, hard=False)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        *,
        replies: bool,
    ) -> None:
        hard = True
        try:
            while data := await reader.read(CHUNK):
                if self._blackholed or (replies and self._silenced):
                    self.swallowed += len(data)
                    continue
                writer.write(data)
                await writer.drain()
            hard = False
        except OSError:
            pass
        if link in self._links:  # one side ended or failed: end the other one too
            self._end(link, hard=hard)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (RST), not an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
