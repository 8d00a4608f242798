"""Admission of new INVITEs: a token bucket, so that a burst of calls is answered 503 +
Retry-After at once instead of queueing work the node cannot finish in time."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` admissions per second, bursts up to ``burst`` (at least one)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
