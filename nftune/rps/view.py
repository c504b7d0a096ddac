"""`nftune rps show`: every interface, its queues, the wanted and the actual mask, and why."""

from __future__ import annotations

from ..context import Context
from ..cpus import format_list
from ..errors import NftuneError
from ..record import Record
from .decide import Decision, decide, default_mask
from .sysfs import NO_SYSFS, Machine, QueueState, has_sysfs, queue_states, read_machine, read_nics


class RpsView(Record):
    """`nftune rps show`: every interface, its queues, and why."""

    mode: str
    machine: Machine | None
    default: str | None
    decisions: tuple[tuple[Decision, tuple[QueueState, ...]], ...]
    note: str | None = None

    def lines(self) -> list[str]:
        if self.machine is None:
            return [f"rps: {self.note}"]
        m = self.machine
        out = [f"mode: {self.mode}; online CPUs: {format_list(set(m.online))}"
               + (f"; isolated: {format_list(set(m.isolated))}" if m.isolated else "")
               + "; devices created later: "
               + (f"rps_default_mask={self.default} and the udev rule" if self.default
                  else "the udev rule")]
        if self.note:
            out.append(f"note: {self.note}")
        rows = [("INTERFACE", "QUEUE", "WANTED", "ACTUAL", "FLOW_CNT", "NUMA", "")]
        for d, states in self.decisions:
            numa = str(d.nic.numa_node) if d.nic.numa_node >= 0 else "-"
            verdict = ("selected: " if d.selected else "skipped: ") + d.reason
            if not states:
                rows.append((d.nic.name, "-", "-", "-", "-", numa, verdict))
            for i, q in enumerate(states):
                rows.append((d.nic.name if i == 0 else "", q.queue, q.wanted or "-",
                             (q.actual or "-") + ("" if q.ok else " (!)"), q.flow_cnt or "-",
                             numa if i == 0 else "", verdict if i == 0 else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        out += ["  ".join(c.ljust(w) for c, w in zip(r[:6], widths, strict=True)) + "  " + r[6]
                for r in rows]
        return [line.rstrip() for line in out]

    def to_json(self) -> dict[str, object]:
        m = self.machine
        return {
            "schema": 1,
            "mode": self.mode,
            "note": self.note,
            "online_cpus": format_list(set(m.online)) if m else None,
            "isolated_cpus": format_list(set(m.isolated)) if m else None,
            "rps_default_mask": self.default,
            "new_devices": None if m is None else ("rps_default_mask" if self.default
                                                   else "udev"),
            "interfaces": [{
                "name": d.nic.name, "selected": d.selected, "reason": d.reason,
                "physical": d.nic.physical,
                "numa_node": d.nic.numa_node, "cpus": format_list(set(d.cpus)),
                "mask": d.mask or None, "flow_cnt": d.flow_cnt if d.selected else None,
                "queues": [{"queue": q.queue, "wanted": q.wanted, "actual": q.actual,
                            "flow_cnt": q.flow_cnt, "ok": q.ok} for q in states],
            } for d, states in self.decisions],
        }


def show(ctx: Context) -> RpsView:
    root, rps = ctx.root, ctx.config.rps
    if not has_sysfs(root):
        return RpsView(rps.mode, None, None, (), NO_SYSFS)
    machine = read_machine(root)
    note = None
    mask = None
    try:
        decisions = decide(rps, machine, read_nics(root))
        if rps.mode != "off":
            mask = default_mask(rps, machine)
    except NftuneError as e:  # show what is there, and say why nothing is chosen
        decisions = [Decision(n, False, "CPUs= is not valid here") for n in read_nics(root)]
        note = str(e)
    if rps.mode == "off":
        decisions = [Decision(d.nic, False, "Mode=off") for d in decisions]
    return RpsView(rps.mode, machine, mask,
                tuple((d, tuple(queue_states(root, d))) for d in decisions), note)
