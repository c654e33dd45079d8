"""Runs every benchmark module in bench/ that has a `main()`, after naming the machine."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench
from bench import machine


def main() -> int:
    print(f"machine: {machine()}", flush=True)
    # `python -m bench ingest_drop --parse-only`: names pick modules, options go to each one.
    only = {arg for arg in sys.argv[1:] if not arg.startswith("-")}
    options = [arg for arg in sys.argv[1:] if arg.startswith("-")]
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_") or (only and info.name not in only):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "main"):
            print(f"\n== bench/{info.name}.py ==", flush=True)
            module.main(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
