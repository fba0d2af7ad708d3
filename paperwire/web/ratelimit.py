"""Per-client rate limits (in this process's memory: each web process limits what it serves)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from fastapi import Request


class RateLimited(Exception):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a sliding log, trimmed as it goes)."""

    def __init__(self, limit: int, window: float = 60.0, clock=time.monotonic, max_keys: int = 100_000):
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, what: str = "requests") -> None:
        """Count one event for ``key``; raise RateLimited when it would exceed the limit."""
        if self.limit <= 0:
            return
        now = self.clock()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys:  # forget the quietest clients rather than grow forever
                    self._prune(now)
                events = self._events[key] = deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                retry = max(1, math.ceil(events[0] + self.window - now))
                raise RateLimited(
                    f"too many {what}: at most {self.limit} per {int(self.window)} s; retry in {retry} s",
                    retry,
                )
            events.append(now)

    def _prune(self, now: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window]:
            del self._events[key]
        if len(self._events) >= self.max_keys:
            self._events.clear()


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def app_limiter(request: Request, name: str, limit: int, window: float = 60.0) -> RateLimiter:
    """The web process's limiter called ``name``, made on first use (one per process, kept on the app)."""
    limiter: RateLimiter | None = getattr(request.app.state, name, None)
    if limiter is None:
        limiter = RateLimiter(limit, window)
        setattr(request.app.state, name, limiter)
    return limiter


async def limit_search(request: Request) -> None:
    """Dependency for every route that runs a search. Async (it never waits), so FastAPI runs it on the
    event loop instead of handing it to a worker thread and back: one thread switch less per search."""
    app_limiter(request, "search_limiter", request.app.state.settings.search_rate_limit).hit(
        client_key(request), "searches"
    )
