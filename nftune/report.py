"""The last verify's report on a running node, /run/nftune/report.json: for operators,
for node-problem-detector (`nftune verify --npd`) and for scripts.

Schema 1: the object `nftune verify --json` prints ("schema", "nftune", "root", "live",
"ok", "counts", "checks"), plus "finished" (Unix time, seconds), "duration_seconds" and
"boot_id" (this boot's, as the node sees it, so a report from an earlier boot is never taken
for this one).
"""

from __future__ import annotations

import json
import os
import re

from .artifacts import REPORT, RUN_DIR
from .attrs import read_attr
from .errors import NftuneError
from .fsio import parse_json
from .root import Root
from .sysctl import BOOT_ID
from .treewrite import ensure_dir, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



BOOT_ID_ENV = "NFTUNE_BOOT_ID"  # nftune-verify.service's Environment=NFTUNE_BOOT_ID=%b
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def boot_id(root: Root) -> str | None:
    """This boot's ID as the node sees it. The service's own /proc (ProtectProc=) shows
    the kernel's, where a container's manager sees the container's (nspawn binds it over):
    the unit hands the manager's in (%b), so the report, the journal's entries and
    node-problem-detector's reader agree, in a container too. Only a UUID counts."""
    given = os.environ.get(BOOT_ID_ENV, "")
    if re.fullmatch(r"[0-9a-f]{32}", given):  # %b: without dashes
        given = "-".join((given[:8], given[8:12], given[12:16], given[16:20], given[20:]))
    if root.live and UUID.fullmatch(given):
        return given
    # The cache compares the boot ID itself: not an input its fingerprint may watch (a run
    # by hand and the service's own /proc see different ones in a container).
    watch, root.watch = root.watch, None
    try:
        return read_attr(root, root.proc_sys(BOOT_ID))
    finally:
        root.watch = watch


def document(data: dict[str, Any], root: Root, finished: float,
             duration: float) -> dict[str, Any]:
    return {**data, "finished": round(finished, 3), "duration_seconds": round(duration, 6),
            "boot_id": boot_id(root)}


def write(root: Root, doc: dict[str, Any]) -> str:
    ensure_dir(root, RUN_DIR)
    # For root and group adm (the unit makes /run/nftune root:adm 2750): it names files
    # and processes of the node.
    write_atomic(root, REPORT, (json.dumps(doc, indent=2) + "\n").encode(), 0o640)
    return root.show(REPORT)


def read(root: Root) -> dict[str, Any] | None:
    """The last report, or None when there is none or it is not one (damaged, not a
    regular file, another schema)."""
    try:
        data = parse_json(root.read_bytes(REPORT) or b"null")
    except (NftuneError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == 1 else None
