"""node-problem-detector's custom plugin protocol, over the last report: exit 0 when OK,
1 on a problem, anything else when unknown; stdout one short message. NPD runs a plugin
every interval on every node, so it reads /run/nftune/report.json (written by
nftune-verify.service and its timer) instead of checking again."""

from __future__ import annotations

import math

from .result import CAUSES, Cause
from .text import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OK, PROBLEM, UNKNOWN = 0, 1, 2
MAX_OUTPUT = 80  # the config's max_output_length: the message is cut to fit
CONDITION = "ConntrackTuningProblem"
# Causes a failed check can carry; each becomes a reason of the condition.
PROBLEM_CAUSES = tuple(c for c in CAUSES if c not in (Cause.OK, Cause.NOT_LIVE))


def reason(cause: str) -> str:
    """changed-at-runtime -> ChangedAtRuntime, as NodeCondition reasons are written."""
    return "".join(part.capitalize() for part in cause.split("-"))


FUTURE_SLACK = 60.0  # seconds a report may seem ahead of the clock (an NTP step)


def verdict(doc: dict[str, Any] | None, boot_id: str | None, now: float, max_age: float,
            cause: str | None = None) -> tuple[int, str]:
    """(exit status, message) for NPD. A report that is missing, damaged, from another
    boot, too old or from the future is unknown, with the reason."""
    code, msg = UNKNOWN, _unknown(doc, boot_id, now, max_age) or ""
    if not msg:
        assert doc is not None
        failed = [c for c in doc["checks"] if c.get("status") == "failed"
                  and (cause is None or c.get("cause") == cause)]
        if not failed:
            code, msg = OK, "nftune: no check failed" + (f" with {cause}" if cause else "")
        else:
            first = failed[0]
            more = f" (+{len(failed) - 1})" if len(failed) > 1 else ""
            code = PROBLEM
            msg = f"{first.get('cause')}: {first.get('check')} {first.get('subject')}{more}"
    return code, escape(msg)[:MAX_OUTPUT]


def _unknown(doc: dict[str, Any] | None, boot_id: str | None, now: float,
             max_age: float) -> str | None:
    if doc is None:
        return "no nftune report: nftune-verify.service has not run"
    finished, checks = doc.get("finished"), doc.get("checks")
    try:
        finished = float(finished) if isinstance(finished, int | float) and not isinstance(
            finished, bool) else math.nan
    except OverflowError:  # an integer of 400 digits
        finished = math.nan
    if not math.isfinite(finished) or not isinstance(checks, list) or not all(
            isinstance(c, dict) for c in checks):
        return "the nftune report is damaged"
    if boot_id is None or doc.get("boot_id") != boot_id:
        return "the nftune report is from an earlier boot"
    if finished > now + FUTURE_SLACK:
        return "the nftune report is from the future: is the clock right?"
    if now - finished > max_age:
        return f"the nftune report is {now - finished:.0f}s old"
    return None


def config(nftune: str, interval: str = "300s") -> dict[str, Any]:
    """The custom-plugin-monitor config nftune ships: a rule per cause."""
    return {
        "plugin": "custom",
        "pluginConfig": {"invoke_interval": interval, "timeout": "10s",
                         "max_output_length": MAX_OUTPUT, "concurrency": 1},
        "source": "nftune",
        "conditions": [{"type": CONDITION, "reason": "ConntrackTuningOK",
                        "message": "nftune: conntrack and RPS settings verified"}],
        "rules": [{"type": "permanent", "condition": CONDITION, "reason": reason(c),
                   "path": nftune, "args": ["verify", "--npd", "--cause", str(c)],
                   "timeout": "10s"} for c in PROBLEM_CAUSES],
    }
