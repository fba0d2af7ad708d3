"""What the benchmark tables name as the machine they ran on."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import psutil


def cpu_name() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return cpu


def cores_and_memory() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
