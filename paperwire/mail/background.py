"""Deliver the outbox from a second process while this one keeps queueing mail (a digest run composes).

Why a process and not a thread: the outbox's one loss window is the gap between committing "handoff" and
writing SMTP's final "." (store/outbox.py). In a process of its own, with one thread, that gap is two
system calls; a composing thread beside it could hold the GIL across it for milliseconds. A process also
uses a second core.

The child takes its settings from the environment it inherits (like every paperwire command), delivers
sweep after sweep, and once its stdin reaches end-of-file (the parent finished queueing, or died) makes
one last sweep and prints its report as JSON. It stops with its parent on Linux (PR_SET_PDEATHSIG, as
SIGTERM, which stops it between messages: paperwire.mail.stopping): a killed run is stopped whole, and
the rerun takes back what either process left (same host, dead pid)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import orjson

from paperwire.mail.outbox import DeliveryReport, deliver_due
from paperwire.mail.stopping import exit_between_messages
from paperwire.mail.transport import Handoff, Transport

IDLE_WAIT = 0.05  # seconds between sweeps when the outbox had nothing due
STOP_SIGNALS = frozenset({int(signal.SIGTERM), int(signal.SIGINT), int(signal.SIGHUP)})


class BackgroundDelivery:
    """``with BackgroundDelivery(offset) as delivery: ...queue mail...; report = delivery.finish()``.

    ``finish`` returns the child's report, or None when the child failed (what it did not send stays in
    the outbox; the caller can deliver it itself)."""

    def __init__(self, clock_offset: timedelta = timedelta(0)):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "paperwire.mail.background",
                "--clock-offset",
                repr(clock_offset.total_seconds()),
                "--parent",
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.report: DeliveryReport | None = None

    @property
    def stopped(self) -> bool:
        """The delivery process was told to stop (SIGTERM, SIGINT, SIGHUP: a service manager stopping
        the whole group, Ctrl-C), as opposed to failing: its mail waits in the outbox."""
        code = self.proc.returncode
        return code is not None and abs(code) in (STOP_SIGNALS | {128 + s for s in STOP_SIGNALS})

    def finish(self) -> DeliveryReport | None:
        if self.proc.returncode is None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()  # end-of-file: nothing more will be queued
            out = self.proc.stdout.read()
            self.proc.stdout.close()
            self.proc.wait()
            if self.proc.returncode == 0:
                with contextlib.suppress(ValueError, TypeError):
                    self.report = DeliveryReport(**orjson.loads(out.splitlines()[-1]))
        return self.report

    def __enter__(self) -> BackgroundDelivery:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.returncode is None and exc[0] is not None:
            self.proc.kill()  # the run failed: stop at once (the outbox keeps what was not sent)
            self.proc.wait()
        self.finish()


class _KeepOpen(Transport):
    """The child's connection stays open across sweeps (``deliver_due`` closes its transport at the end)."""

    def __init__(self, inner: Transport):
        self.inner = inner
        self.description = inner.description

    def send(self, sender: str, recipient: str, message: bytes, on_handoff: Handoff | None = None) -> None:
        self.inner.send(sender, recipient, message, on_handoff=on_handoff)

    def close(self) -> None:
        pass


def _stop_with_parent(parent: int) -> None:
    """SIGTERM when the parent dies (Linux), and SIGTERM stops this process between messages."""
    exit_between_messages(*STOP_SIGNALS)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _child(clock_offset: float, parent: int) -> int:
    _stop_with_parent(parent)
    from paperwire.config import get_settings
    from paperwire.mail.transport import transport_from_settings
    from paperwire.store import open_store

    settings = get_settings()
    offset = timedelta(seconds=clock_offset)
    store = open_store()
    transport = transport_from_settings(settings)
    queued_all = threading.Event()

    def wait_for_eof() -> None:
        with contextlib.suppress(OSError):
            while sys.stdin.buffer.read(65536):
                pass
        queued_all.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    total = DeliveryReport()
    try:
        while True:
            last = queued_all.is_set()  # read before the sweep: the sweep then sees everything queued
            report = deliver_due(
                store, _KeepOpen(transport), settings.mail_from, clock=lambda: datetime.now(UTC) + offset
            )
            total.add(report)
            if report.server_down or last:
                break
            if not (report.sent or report.failed or report.retried):
                queued_all.wait(IDLE_WAIT)
    finally:
        transport.close()
        store.close()
    sys.stdout.buffer.write(orjson.dumps(asdict(total)) + b"\n")
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperwire.mail.background", description=__doc__)
    parser.add_argument("--clock-offset", type=float, default=0.0, help="seconds added to the clock")
    parser.add_argument("--parent", type=int, required=True, help="the pid this process dies with")
    args = parser.parse_args(argv)
    return _child(args.clock_offset, args.parent)


if __name__ == "__main__":
    sys.exit(main())
