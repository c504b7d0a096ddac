"""What every benchmark shares: the nftune command to time, and medians of commands run
interleaved in one run, so a noisy, shared machine slows them alike."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path


def nftune_argv() -> list[str]:
    """The venv's nftune next to this interpreter, else `python -m nftune`."""
    exe = Path(sys.executable).with_name("nftune")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "nftune"]


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def medians(cases: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Each command's median in seconds, after one warm-up run of each."""
    for argv in cases.values():
        timed(argv)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            samples[name].append(timed(argv))
    return {name: statistics.median(s) for name, s in samples.items()}


def table(results: dict[str, float], base: str) -> dict[str, float]:
    """Print each median and its ratio to `base`; return the ratios."""
    width = max(len(n) for n in results) + 2
    ratios = {n: m / results[base] for n, m in results.items()}
    print(f"{'command':<{width}} {'median ms':>10} {'ratio':>7}")
    for name, m in results.items():
        print(f"{name:<{width}} {m * 1000:>10.1f} {ratios[name]:>7.2f}")
    return ratios
