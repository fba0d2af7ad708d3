"""A progress line for long jobs on a terminal: count, rate, and percent when the total is known."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self,
        label: str,
        *,
        unit: str = "papers",
        total_bytes: int | None = None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.5,
    ):
        self.label = label
        self.unit = unit
        self.total_bytes = total_bytes
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.interval = interval
        self.count = 0
        self.bytes_done = 0
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, count: int | None = None, bytes_done: int | None = None, *, advance: int = 0) -> None:
        self.count = count if count is not None else self.count + advance
        if bytes_done is not None:
            self.bytes_done = bytes_done
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self._draw(now)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def _draw(self, now: float) -> None:
        parts = [f"{self.label}: {self.count:,} {self.unit}", f"{self.rate:,.0f}/s"]
        if self.total_bytes:
            frac = min(1.0, self.bytes_done / self.total_bytes)
            parts.append(f"{frac:6.1%}")
            if frac > 0.001:
                eta = (now - self.started) * (1 - frac) / frac
                parts.append(f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
        self.stream.write("\r" + "  ".join(parts) + "\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
