"""What a person sees: every line escaped (names and values from a tree or a process
never reach a terminal raw), JSON exact, standard streams that are closed or full never a
traceback; and the help: the options verbs share, the exit codes under each verb's."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, as wide as shutil.get_terminal_size() says, without importing
    shutil (with bz2 and lzma) on every run: argparse makes one for each argument added."""
    import argparse

    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = (os.get_terminal_size(sys.__stdout__.fileno()).columns or 80) \
                if sys.__stdout__ else 80
        except (ValueError, OSError):
            columns = 80
    return argparse.RawDescriptionHelpFormatter(prog, width=max(columns, 20) - 2)


def show(args: argparse.Namespace, result: Any, *context: Any) -> None:
    """A verb's result as JSON with --json, else as its lines: each result type shapes
    its own output (to_json(), lines())."""
    if args.json:
        import json

        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")  # exact; JSON escapes
    else:
        say(*result.lines(*context))


def say(*lines: str, err: bool = False) -> None:
    """Lines for a person, each one line: names and values from the tree or from a process
    never reach the terminal raw (a newline, C0 and C1 controls and undecodable bytes are
    escaped, as systemctl does), so nothing can start a line of its own."""
    from .text import escape

    out = sys.stderr if err else sys.stdout
    for line in lines:
        out.write(escape(line) + "\n")


def complain(*lines: str) -> None:
    """Errors on stderr; a stderr that cannot take them (full, gone) is no traceback."""
    try:
        say(*lines, err=True)
        sys.stderr.flush()
    except OSError:
        pass


def guard_stdio() -> bool:
    """Standard descriptors that are closed get /dev/null, so no file nftune opens (or a
    command it runs) can land on them. Returns whether stdout was closed. Output is
    written with escapes for what the locale cannot encode, never an error."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    if closed:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in closed:
            if fd != null:
                os.dup2(null, fd)
        if null not in closed:
            os.close(null)
        if 2 in closed or sys.stderr is None:
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - for the process' life
        if 1 in closed or sys.stdout is None:
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    return 1 in closed


def silence_stdout() -> None:
    """After a write error, let the interpreter's last flushes go to /dev/null."""
    try:
        null = os.open("/dev/null", os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass


EXIT_CODES = """\
exit status:
  0  success (verify: every check passed or was skipped)
  1  verify: at least one check failed
  2  usage or configuration error; nothing was written
  3  the operation could not complete (a file in the way, I/O error, a command failed)
"""


def root_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", metavar="DIR",
                   help="work on the image tree DIR: write files only, never touch the "
                        "running kernel; runtime checks are skipped")
    p.add_argument("--live", action="store_true",
                   help="/ is the running system, where nftune cannot tell (it may not "
                        "read /proc/1/root): without it, / is then taken as an image tree; "
                        "where nftune can tell it is not (a chroot, no systemd running), "
                        "an input error")


def bus_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bus-address", metavar="ADDRESS",
                   help="talk to the systemd behind this D-Bus address (also "
                        "$NFTUNE_BUS_ADDRESS), e.g. a container's "
                        "unix:path=/proc/PID/root/run/dbus/system_bus_socket; "
                        "default: the system bus")


def json_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def epilog() -> dict[str, Any]:
    """The exit codes below a verb's help, as written."""
    return {"epilog": EXIT_CODES, "formatter_class": formatter}
