"""A real `paperwire serve` process on a free loopback port, for tests that talk HTTP to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def paperwire(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI in a child process with these settings; fail loudly with its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "paperwire.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"paperwire {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def site_env(data: Path, **extra: str) -> dict[str, str]:
    """Settings for a test site in ``data``: SQLite, no embedding on import, the index followed at once,
    relative links, mail swept twice a second; ``extra`` adds or overrides (PAPERWIRE_SMTP_URL, limits)."""
    return {
        "PAPERWIRE_DATA_DIR": str(data),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{data / 'paperwire.db'}",
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "0",
        "PAPERWIRE_INDEX_FOLLOW_SECONDS": "0",
        "PAPERWIRE_BASE_URL": "",
        "PAPERWIRE_MAIL_FROM": "paperwire <signin@paperwire.test>",
        "PAPERWIRE_MAIL_SWEEP_SECONDS": "0.5",
        **extra,
    }


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_server(env: dict[str, str], timeout: float = 60) -> LiveServer:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperwire.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return LiveServer(url, env, proc)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start: " + proc.stdout.read().decode(errors="replace"))
