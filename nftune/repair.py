"""Runtime drift: a sysctl nftune manages, changed after boot (another tool, a `sysctl -w`).
verify reports it as changed-at-runtime. With repair on, nftune puts the value back and
says what it changed. A value reset again within one interval of nftune's repair is
contested: another tool sets it, and nftune stops repairing it (no loop) until the value
is right again. The memory of repairs is per boot: /run/nftune/repairs.json.
"""

from __future__ import annotations

import json
from functools import partial

from .artifacts import REPAIRS, RUN_DIR
from .attrs import sync_attr
from .context import Context
from .errors import NftuneError
from .fsio import parse_json
from .record import Record
from .result import Cause, Check, CheckResult, Status, failed
from .root import Root
from .sysctl import same_value
from .treewrite import ensure_dir, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MARGIN = 120.0  # seconds: the timer's randomized delay and a slow run


class Repair(Record):
    """A sysctl changed at runtime and put back."""

    key: str  # as sysctl(8) shows it
    old: str
    new: str

    def line(self) -> str:
        return f"repaired: {self.key}: {self.old!r} -> {self.new!r} (changed at runtime)"


def _load(root: Root) -> dict[str, dict[str, Any]]:
    try:
        data = parse_json(root.read_bytes(REPAIRS) or b"{}")
    except (NftuneError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    # Only entries nftune could have written: a damaged file is forgotten, never a crash.
    return {k: v for k, v in data.items() if isinstance(v, dict)
            and type(v.get("at", 0)) in (int, float) and type(v.get("contested", False)) is bool}


def _save(root: Root, state: dict[str, dict[str, Any]]) -> None:
    ensure_dir(root, RUN_DIR)
    write_atomic(root, REPAIRS, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode(),
                      0o644)


def repair(ctx: Context, results: tuple[CheckResult, ...],
           now: float) -> tuple[tuple[CheckResult, ...], list[Repair]]:
    """Put back each value changed at runtime, unless contested; the results say what was
    done. Only the sysctl-value check's changed-at-runtime failures are touched."""
    root, config = ctx.root, ctx.config
    state = _load(root)
    before = dict(state)
    window = config.verify.interval * 60 + MARGIN
    specs = {s.display: s for s in config.sysctls}
    out: list[CheckResult] = []
    repairs: list[Repair] = []
    for r in results:
        spec = specs.get(r.subject) if r.check == Check.SYSCTL_VALUE else None
        if spec is None:
            out.append(r)
            continue
        if r.status is Status.PASSED:
            state.pop(spec.display, None)  # right again: a later change is news
            out.append(r)
            continue
        if r.cause is not Cause.CHANGED_AT_RUNTIME or r.actual is None:
            out.append(r)
            continue
        last = state.get(spec.display)
        if last and (last.get("contested") or now - float(last.get("at", 0)) <= window):
            state[spec.display] = {**last, "contested": True}
            from .kubeproxy import writer_of

            writer = writer_of(ctx, spec.key)
            out.append(failed(
                Check.SYSCTL_VALUE, spec.display, Cause.CONTESTED, expected=spec.value,
                actual=r.actual, source=r.source,
                reason=f"set to {r.actual!r} again after nftune put it back "
                       f"{now - float(last.get('at', now)):.0f}s ago: "
                       + (f"{writer} writes it" if writer else "another tool sets it")
                       + ", and nftune no longer repairs it",
                hint=("make kube-proxy's conntrack settings agree (conntrack.maxPerCore: 0 "
                      "leaves the table to nftune)" if writer else
                      "find what writes it (kube-proxy's conntrack settings, a tuned "
                      "profile, a script's sysctl -w) and make it agree")))
            continue
        sync_attr(root, root.proc_sys(spec.key), spec.value,
                  partial(same_value, b=spec.value))
        state[spec.display] = {"at": now, "from": r.actual}
        repairs.append(Repair(spec.display, r.actual, spec.value))
        out.append(r._replace(status=Status.PASSED, cause=Cause.OK, actual=spec.value,
                           reason=f"repaired: was {r.actual!r}, changed at runtime",
                           hint=None))
    if state != before:
        _save(root, state)
    return tuple(out), repairs
