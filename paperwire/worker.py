"""``paperwire worker``: one long-running process that harvests new papers, brings this node's index up
to date, sends the digests that are due and retries mail, each on its own schedule (settings):

* ``PAPERWIRE_HARVEST_SETS`` (e.g. ``cs,stat``; empty: no harvesting, the default: nothing is fetched
  from the network unless asked) every ``PAPERWIRE_HARVEST_MINUTES`` (720);
* the index catches up after each harvest and every ``PAPERWIRE_INDEX_FOLLOW_SECONDS`` anyway (another
  process may have imported papers), vectors for at most ``PAPERWIRE_IMPORT_EMBED_LIMIT`` papers a time;
* digests every ``PAPERWIRE_DIGEST_MINUTES`` (5): each subscriber's own hour decides who is due;
* mail in the outbox (retries after an outage) every ``PAPERWIRE_MAIL_SWEEP_SECONDS``.

Each step is separate: a failing harvest (arXiv down) does not stop digests, and the next tick tries
again. SIGTERM/SIGINT stop it after the step in progress; anything half done is safe to redo."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("paperwire.worker")


@dataclass
class Job:
    name: str
    every: float  # seconds; 0 turns it off
    run: Callable[[], object]
    next_at: float = 0.0
    failures: int = 0
    last_result: object = None

    def due(self, now: float) -> bool:
        return self.every > 0 and now >= self.next_at


@dataclass
class Worker:
    jobs: list[Job]
    stop: threading.Event = field(default_factory=threading.Event)
    on_result: Callable[[Job, object], None] | None = None

    def tick(self) -> None:
        """Run every job that is due, in order (harvest before index before digests)."""
        for job in self.jobs:
            if self.stop.is_set():
                return
            now = time.monotonic()
            if not job.due(now):
                continue
            try:
                job.last_result = job.run()
                job.failures = 0
                job.next_at = time.monotonic() + job.every
                if self.on_result is not None and job.last_result is not None:
                    self.on_result(job, job.last_result)
            except Exception:
                job.failures += 1
                # Back off on repeated failures (arXiv down for hours), at most to 8x the interval.
                delay = min(job.every * 8, job.every * 2 ** min(job.failures - 1, 3), 3600.0)
                job.next_at = time.monotonic() + max(delay, min(job.every, 30.0))
                log.exception("%s failed (%d in a row); next try in %.0f s", job.name, job.failures, delay)

    def run_forever(self, *, once: bool = False) -> None:
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: self.stop.set())
        try:
            while not self.stop.is_set():
                self.tick()
                if once:
                    return
                upcoming = [j.next_at for j in self.jobs if j.every > 0]
                wait = max(0.5, min(upcoming) - time.monotonic()) if upcoming else 60.0
                self.stop.wait(min(wait, 60.0))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
