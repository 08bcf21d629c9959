"""When to try a failed task again. Pure: the jitter comes from the task id, not a random source."""

from __future__ import annotations

from ideamine.canonical import sha256_hex
from ideamine.config.model import RetrySpec

__all__ = ["retry_delay"]


def retry_delay(policy: RetrySpec, *, tries: int, retryable: bool, task_id: str) -> float | None:
    """Seconds to wait before the next try, or ``None`` when the task has failed for good.

    Args:
        policy: the phase's retry settings.
        tries: how many tries have been made, the failed one included.
        retryable: False for errors a retry cannot fix (bad templates, schema mismatches).
        task_id: seeds the jitter so the same task always waits the same time.
    """
    if not retryable or tries >= policy.max_attempts:
        return None
    base = policy.base_delay_ms / 1000
    if policy.strategy == "exponential":
        delay = base * 2 ** (tries - 1)
    elif policy.strategy == "linear":
        delay = base * tries
    else:
        delay = base
    delay = min(delay, policy.max_delay_ms / 1000)
    jitter = int(sha256_hex(f"{task_id}:{tries}")[:8], 16) / 0xFFFFFFFF  # 0..1
    return float(delay * (0.5 + jitter / 2))
