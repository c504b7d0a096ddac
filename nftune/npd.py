"""node-problem-detector's custom plugin protocol, over the last report: exit 0 when OK,
1 on a problem, anything else when unknown; stdout one short message. NPD runs a plugin
every interval on every node, so it reads /run/nftune/report.json (written by
nftune-verify.service and its timer) instead of checking again."""

from __future__ import annotations

from typing import Any

from .result import CAUSES, Cause

OK, PROBLEM, UNKNOWN = 0, 1, 2
MAX_OUTPUT = 80  # the config's max_output_length: the message is cut to fit
CONDITION = "ConntrackTuningProblem"
# Causes a failed check can carry; each becomes a reason of the condition.
PROBLEM_CAUSES = tuple(c for c in CAUSES if c not in (Cause.OK, Cause.NOT_LIVE))


def reason(cause: str) -> str:
    """changed-at-runtime -> ChangedAtRuntime, as NodeCondition reasons are written."""
    return "".join(part.capitalize() for part in cause.split("-"))


def verdict(doc: dict[str, Any] | None, boot_id: str | None, now: float, max_age: float,
            cause: str | None = None) -> tuple[int, str]:
    """(exit status, message) for NPD."""
    if doc is None:
        code, msg = UNKNOWN, "no nftune report: nftune-verify.service has not run"
    elif boot_id is None or doc.get("boot_id") != boot_id:
        code, msg = UNKNOWN, "the nftune report is from an earlier boot"
    elif now - float(doc.get("finished", 0)) > max_age:
        code, msg = UNKNOWN, f"the nftune report is {now - float(doc['finished']):.0f}s old"
    else:
        failed = [c for c in doc.get("checks", []) if c.get("status") == "failed"
                  and (cause is None or c.get("cause") == cause)]
        if not failed:
            code, msg = OK, "nftune: no check failed" + (f" with {cause}" if cause else "")
        else:
            first = failed[0]
            more = f" (+{len(failed) - 1})" if len(failed) > 1 else ""
            code = PROBLEM
            msg = f"{first.get('cause')}: {first.get('check')} {first.get('subject')}{more}"
    return code, msg[:MAX_OUTPUT]


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
