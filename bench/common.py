"""What every benchmark shares: the nftune command to time, and medians of commands run
interleaved in one run, so a noisy, shared machine slows them alike."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]


def options(doc: str | None, runs: int) -> argparse.ArgumentParser:
    """A benchmark's command line: --runs (medians of how many) and --check (exit 1 when
    the target is missed); a benchmark adds its own."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=runs)
    ap.add_argument("--check", action="store_true")
    return ap


def nftune_argv() -> list[str]:
    """The venv's nftune next to this interpreter, else `python -m nftune`."""
    exe = Path(sys.executable).with_name("nftune")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "nftune"]


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def cpu_seconds(argv: list[str]) -> float:
    """User + system CPU of the command and of the children it waited for."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped above
    return usage.ru_utime + usage.ru_stime


def medians(cases: dict[str, list[str]], runs: int,
            measure: Callable[[list[str]], float] = timed) -> dict[str, float]:
    """Each command's median in seconds (wall clock, or `measure`), after one warm-up run
    of each."""
    for argv in cases.values():
        measure(argv)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            samples[name].append(measure(argv))
    return {name: statistics.median(s) for name, s in samples.items()}


def table(results: dict[str, float], base: str) -> dict[str, float]:
    """Print each median and its ratio to `base`; return the ratios."""
    width = max(len(n) for n in results) + 2
    ratios = {n: m / results[base] for n, m in results.items()}
    print(f"{'command':<{width}} {'median ms':>10} {'ratio':>7}")
    for name, m in results.items():
        print(f"{name:<{width}} {m * 1000:>10.1f} {ratios[name]:>7.2f}")
    return ratios


def checkout(commit: str, dest: Path) -> bool:
    """The nftune package as it was at `commit`, unpacked into dest/nftune (for a
    before-and-after run); False when the clone lacks that history (a shallow clone)."""
    archive = subprocess.run(["git", "-C", str(TOP), "archive", commit, "nftune"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return True


@contextlib.contextmanager
def before(name: str, commit: str) -> Iterator[Path | None]:
    """A scratch directory under /var/tmp, removed afterwards, with nftune as it was at
    `commit` in its `base/`; None, said, when the clone lacks that history."""
    work = Path(tempfile.mkdtemp(prefix=f"nftune-bench-{name}.", dir="/var/tmp"))
    try:
        if not checkout(commit, work / "base"):
            print(f"{name}: skipped: commit {commit} is not in this clone's history")
            yield None
        else:
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def in_top(top: Path, *args: str) -> list[str]:
    """`python -m nftune ARGS` of the source tree `top`, run in it: `python -m` puts the
    working directory first on sys.path, so from this checkout both versions would run
    this checkout's nftune."""
    return ["env", "-C", str(top), f"PYTHONPATH={top}", sys.executable, "-m", "nftune", *args]


def apply_tree(tree: Path) -> None:
    """Today's `nftune apply --root` on a benchmark's tree."""
    subprocess.run([sys.executable, "-m", "nftune", "apply", "--root", str(tree)], check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(TOP)})


def verdict(ratio: float, target: float, check: bool, what: str = "") -> int:
    """Print whether `ratio` met `target`; the exit status (1 only when missed and --check)."""
    ok = ratio <= target
    print(f"target: {what}<= {target:.2f}x: {'met' if ok else 'MISSED'}"
          + (f" (worst {ratio:.2f}x)" if what else ""))
    return 0 if ok or not check else 1
