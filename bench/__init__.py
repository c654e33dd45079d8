"""Benchmarks (`make bench`): each prints figures as ratios against a same-run baseline."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """The machine a figure was measured on: host, cores, CPU model, Python version."""
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                "",
            )
    except OSError:
        pass
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({model or platform.processor()}), "
        f"Python {platform.python_version()}"
    )
