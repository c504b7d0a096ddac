"""The options verbs share, and the exit codes every verb's help ends with."""

from __future__ import annotations

from .console import formatter

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

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
