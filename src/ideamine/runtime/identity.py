"""Who holds a lease: ``host:pid:start-time``, and whether that process still lives."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["owner_alive", "process_owner"]


def _start_time(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux), to tell reused pids apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces): state is field 3, start time 22.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has finished


def process_owner(name: str | None = None) -> str:
    """This process's owner string, ``host:pid:start-time``, with ``/name`` if named."""
    pid = os.getpid()
    owner = f"{socket.gethostname()}:{pid}:{_start_time(pid) or '0'}"
    return f"{owner}/{name}" if name else owner


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; ``None`` when it is on another host (unknown)."""
    host, _, rest = owner.split("/", 1)[0].partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    current = _start_time(pid)
    if current is not None:
        return start in ("0", current)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
