"""nftune's own files as systemd sees them: the one of its name that wins on the search
path, and why it is not in effect when it is not (several families ask)."""

from __future__ import annotations

from ..artifacts import is_ours
from ..conffiles import ConfFile, winner_for
from ..result import Cause
from ..root import Root


def own_file(root: Root, dirs: list[str], name: str) -> tuple[ConfFile | None, Cause | None]:
    """nftune's file of this name as systemd sees it, or the cause it is not in effect."""
    f = winner_for(root, dirs, name)
    if f is None:
        return None, Cause.FILE_MISSING
    if f.problem:
        return f, Cause.UNREADABLE
    if f.masked or not is_ours(root, f.path):
        return f, Cause.FILE_MASKED
    return f, None


def file_reason(root: Root, f: ConfFile | None, cause: Cause, name: str) -> str:
    if cause is Cause.FILE_MISSING or f is None:
        return f"nftune's {name} is not installed"
    if f.problem:
        return f"nftune's {name} {root.show(f.path)} cannot be read: {f.problem}"
    what = "masked by" if f.masked else "hidden by"
    return f"nftune's {name} is {what} {root.show(f.path)}"
