"""The journal, both ways. Written: structured entries over journald's native protocol (a
datagram per entry on /run/systemd/journal/socket;
https://systemd.io/JOURNAL_NATIVE_PROTOCOL/), without libsystemd: one entry per failed
check, findable with `journalctl MESSAGE_ID=...`. Read: one process's messages of this
boot, through journalctl."""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import struct

from .errors import EXIT_FAILED, NftuneError
from .result import CheckResult
from .root import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .context import Context

SOCKET = "/run/systemd/journal/socket"
# A check failed (fixed: operators and node-problem-detector filter on it).
MESSAGE_ID_FAILED = "fa14c8a71f284adba5fa982e34c9d8cc"
# nftune put a sysctl changed at runtime back (Repair=yes).
MESSAGE_ID_REPAIRED = "12bd8e8214984f59a256c378c6ae975c"
PRIORITY_NOTICE = 5
PRIORITY_WARNING = 4
_FIELD = re.compile(r"[A-Z0-9][A-Z0-9_]{0,63}")


def encode(fields: dict[str, str]) -> bytes:
    """One entry: KEY=value lines; a value with a newline in the length-prefixed form."""
    out = bytearray()
    for key, value in fields.items():
        if not _FIELD.fullmatch(key):
            raise ValueError(f"not a journal field name: {key!r}")
        data = value.encode("utf-8", "surrogateescape")  # a name's own bytes
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def failure_fields(r: CheckResult) -> dict[str, str]:
    fields = {
        "MESSAGE": f"nftune: {r.line()}",
        "MESSAGE_ID": MESSAGE_ID_FAILED,
        "PRIORITY": str(PRIORITY_WARNING),
        "SYSLOG_IDENTIFIER": "nftune",
        "NFTUNE_CHECK": r.check,
        "NFTUNE_SUBJECT": r.subject,
        "NFTUNE_CAUSE": str(r.cause),
    }
    for key, value in (("NFTUNE_EXPECTED", r.expected), ("NFTUNE_ACTUAL", r.actual),
                       ("NFTUNE_SOURCE", r.source), ("NFTUNE_HINT", r.hint)):
        if value is not None:
            fields[key] = value
    return fields


def repair_fields(key: str, old: str, new: str) -> dict[str, str]:
    return {"MESSAGE": f"nftune: repaired {key}: {old!r} -> {new!r} (changed at runtime)",
            "MESSAGE_ID": MESSAGE_ID_REPAIRED, "PRIORITY": str(PRIORITY_NOTICE),
            "SYSLOG_IDENTIFIER": "nftune", "NFTUNE_KEY": key, "NFTUNE_OLD": old,
            "NFTUNE_NEW": new}


def send(root: Root, entries: list[dict[str, str]]) -> int:
    """Send the entries; returns how many. No journal (not the running system, or journald
    down) is an error: the caller asked for the journal."""
    if not entries:
        return 0
    try:
        # The socket itself, resolved in the tree and held by a descriptor, is what the
        # entries go to: no link in the tree's /run can send them anywhere else.
        fd = root.open(SOCKET, os.O_PATH | os.O_NOFOLLOW)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise OSError(errno.ENOTSOCK, os.strerror(errno.ENOTSOCK))
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                for fields in entries:
                    s.sendto(encode(fields), f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    except OSError as e:
        raise NftuneError(f"cannot write to the journal: {e.strerror}", path=root.show(SOCKET),
                          exit_code=EXIT_FAILED, hint="is systemd-journald running?") from e
    return len(entries)


def read(ctx: Context, identifier: str, pid: int, priority: int = 7, *,
         or_kernel: bool = False) -> list[str]:
    """The messages one process logged this boot, oldest first (`or_kernel`: also those
    the kernel log carries under its identifier, which only root can write); [] when the
    journal cannot be read (no journalctl, no boot ID, no journal files in the tree)."""
    from .report import boot_id

    root = ctx.root
    bid = (boot_id(root) or "").replace("-", "")
    if not bid or pid <= 0:
        return []
    argv = ["journalctl", "--no-pager", "--quiet", "--output=json", f"--priority={priority}"]
    if not root.is_host:
        argv.append(f"--root={root.path}")
    match = [f"_BOOT_ID={bid}", f"SYSLOG_IDENTIFIER={identifier}"]
    argv += [*match, f"_PID={pid}"]
    if or_kernel:
        argv += ["+", *match, "_TRANSPORT=kernel"]
    try:
        out = ctx.run(argv, check=False, timeout=10).stdout
    except NftuneError:
        return []
    import json  # only a live boot check reads the journal

    messages = []
    for line in out.splitlines():
        try:
            m = json.loads(line).get("MESSAGE")
        except ValueError:
            continue
        if isinstance(m, str):
            messages.append(m)
    return messages
