"""The one way nftune runs another program."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import EXIT_FAILED, NftuneError
from .record import Record


class Completed(Record):
    """A finished command: its argv, exit status and output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> Completed:
    """Run argv without a shell; raise NftuneError (exit 3) on failure when check is set."""
    import subprocess  # most runs of nftune start no program

    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                           check=False, stdin=subprocess.DEVNULL, env=_environment())
    except FileNotFoundError as e:
        raise NftuneError(f"command not found: {argv[0]}", exit_code=EXIT_FAILED,
                          hint="install it, or run nftune with --root to write files only") from e
    except subprocess.TimeoutExpired as e:
        raise NftuneError(f"{' '.join(argv)} timed out after {timeout:g}s",
                          exit_code=EXIT_FAILED) from e
    done = Completed(tuple(argv), p.returncode, p.stdout, p.stderr)
    if check and p.returncode != 0:
        detail = (p.stderr or p.stdout).strip().splitlines()
        raise NftuneError(
            f"{' '.join(argv)} exited with {p.returncode}"
            + (f": {detail[-1]}" if detail else ""),
            exit_code=EXIT_FAILED,
        )
    return done


def _environment() -> dict[str, str] | None:
    """The environment for a program nftune runs: its own. The binary's loader points
    LD_LIBRARY_PATH at the bundled libraries (saving the caller's value in
    LD_LIBRARY_PATH_ORIG); journalctl or modprobe must not load those."""
    import os
    import sys

    if not getattr(sys, "frozen", False):
        return None  # inherit, unchanged
    env = dict(os.environ)
    orig = env.pop("LD_LIBRARY_PATH_ORIG", None)
    if orig is None:
        env.pop("LD_LIBRARY_PATH", None)
    else:
        env["LD_LIBRARY_PATH"] = orig
    return env
