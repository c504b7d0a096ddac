"""Against a real systemd: each scenario boots its own copy of a bookworm rootfs under
systemd-nspawn, runs nftune from the host over the container's bus, and asserts the exact
cause. The container's own `systemd-analyze critical-chain` is kept next to nftune's output
in build/artifacts/nspawn/SCENARIO/.

Needs root, systemd-nspawn and mmdebstrap (tools/bootstrap installs them). Without them the
module is skipped, unless NFTUNE_REQUIRE_NSPAWN=1 (tests/run sets it) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from nspawn import base_rootfs, booted, copy_rootfs, why_not

ARTIFACTS = Path(os.environ.get("NFTUNE_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "build/artifacts"))
KEY = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"
ML, SC = "systemd-modules-load.service", "systemd-sysctl.service"


require(why_not(), "NFTUNE_REQUIRE_NSPAWN", "nspawn tests")


@pytest.fixture(scope="module")
def base() -> Path:
    return base_rootfs()


def nftune(*args: str, ok: tuple[int, ...] = (0, 1)) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NFTUNE_BUS_ADDRESS"}
    p = subprocess.run([sys.executable, "-m", "nftune", *args], capture_output=True,
                       text=True, env=env, timeout=120, check=False)
    assert p.returncode in ok, f"nftune {' '.join(args)} exited {p.returncode}:\n{p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr
    return p


@dataclass
class Outcome:
    verify: dict[str, Any]
    verify_rc: int
    chain: dict[str, Any]
    offline: dict[str, Any]  # `nftune chain --root` on the same rootfs, before it booted
    analyze: str
    value: str  # the container's live nf_conntrack_tcp_be_liberal
    shown: dict[str, dict[str, str]]  # `systemctl show` of the units the test asked for

    def check(self, check: str, subject: str) -> dict[str, Any]:
        hits = [c for c in self.verify["checks"]
                if c["check"] == check and c["subject"] == subject]
        assert len(hits) == 1, (check, subject, self.verify["checks"])
        return hits[0]


def run_scenario(base: Path, tmp_path: Path, name: str, setup: Callable[[Path], None],
                 *, privileged: bool = True, show: tuple[str, ...] = ()) -> Outcome:
    rootfs = copy_rootfs(base, tmp_path / name)
    out = ARTIFACTS / "nspawn" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        nftune("apply", "--root", str(rootfs), ok=(0,))
        setup(rootfs)
        offline = nftune("chain", "--root", str(rootfs), "--json")
        with booted(rootfs, f"nftune-{name}-{os.getpid()}", privileged=privileged) as c:
            where = ["--root", str(c.root), "--bus-address", c.bus_address]
            verify = nftune("verify", *where, "--json")
            chain = nftune("chain", *where, "--json")
            text = nftune("chain", *where)
            analyze = c.enter("systemd-analyze", "critical-chain", SC)
            value = c.enter("cat", KEY, net_only=True).stdout.strip()
            shown = {u: dict(line.partition("=")[::2] for line in c.enter(
                "systemctl", "show", "-p", "ActiveState,InactiveExitTimestampMonotonic",
                u).stdout.splitlines()) for u in show}
        (out / "critical-chain.txt").write_text(analyze.stdout + analyze.stderr)
        (out / "nftune-chain.txt").write_text(text.stdout)
        (out / "nftune-chain.json").write_text(chain.stdout)
        (out / "nftune-chain-offline.json").write_text(offline.stdout)
        (out / "nftune-verify.json").write_text(verify.stdout)
        return Outcome(json.loads(verify.stdout), verify.returncode, json.loads(chain.stdout),
                       json.loads(offline.stdout), analyze.stdout, value, shown)
    finally:
        log = rootfs.with_suffix(".console.log")
        if log.exists():
            shutil.copy(log, out / "console.log")
        shutil.rmtree(rootfs, ignore_errors=True)


def graph_verdict(o: Outcome) -> tuple[str, str]:
    """The live graph proof and the offline one, which must agree."""
    live = next(c for c in o.chain["checks"] if c["check"] == "boot-graph")
    return live["cause"], o.offline["verdict"]["cause"]


def write(rootfs: Path, path: str, text: str) -> None:
    p = rootfs / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_ordering_intact_both_units_ran(base: Path, tmp_path: Path) -> None:
    o = run_scenario(base, tmp_path, "intact", lambda r: None)
    assert o.verify_rc == 0 and o.verify["ok"], o.verify
    assert o.chain["ok"] and o.chain["verdict"]["cause"] == "ok"
    for unit in (ML, SC):
        assert o.check("unit-state", unit)["status"] == "passed"
    assert o.check("boot-order", SC)["status"] == "passed"
    assert o.check("order-dropin", f"{SC}.d/nftune.conf")["status"] == "passed"
    assert graph_verdict(o) == ("ok", "ok")
    assert o.value == "1"
    # Both trees hang systemd-modules-load under systemd-sysctl.
    assert o.chain["chain"]["unit"] == SC
    assert ML in [c["unit"] for c in o.chain["chain"]["children"]]
    assert SC in o.analyze and ML in o.analyze


def test_container_without_privileges_skips_both_units(base: Path, tmp_path: Path) -> None:
    o = run_scenario(base, tmp_path, "unprivileged", lambda r: None, privileged=False)
    ml, sc = o.check("unit-state", ML), o.check("unit-state", SC)
    assert ml["cause"] == "modules-load-skipped"
    assert "ConditionCapability=CAP_SYS_MODULE failed" in ml["reason"]
    assert sc["cause"] == "sysctl-skipped"
    assert "ConditionPathIsReadWrite=/proc/sys/net" in sc["reason"]
    assert o.check("boot-order", SC)["status"] == "skipped"
    assert o.chain["verdict"]["cause"] == "modules-load-skipped"
    assert not o.chain["ok"] and o.verify_rc == 1
    assert graph_verdict(o) == ("ok", "ok")  # the graph is fine; the units did not run


def test_modules_load_masked_in_etc(base: Path, tmp_path: Path) -> None:
    def mask(rootfs: Path) -> None:
        (rootfs / "etc/systemd/system" / ML).symlink_to("/dev/null")

    o = run_scenario(base, tmp_path, "masked", mask)
    assert o.check("unit-state", ML)["cause"] == "unit-masked"
    assert o.check("ordering", SC)["cause"] == "unit-masked"
    assert o.chain["verdict"]["cause"] == "unit-masked"
    assert graph_verdict(o) == ("unit-masked", "unit-masked")


def test_dropin_that_breaks_the_ordering(base: Path, tmp_path: Path) -> None:
    """An empty After= resets nothing in systemd, so a drop-in breaks the ordering by adding
    the reverse one: a cycle, which systemd breaks by dropping a job."""
    dropin = f"/etc/systemd/system/{ML}.d/50-local.conf"

    def cycle(rootfs: Path) -> None:
        write(rootfs, dropin, "[Unit]\nAfter=systemd-sysctl.service\n")

    o = run_scenario(base, tmp_path, "cycle", cycle)
    assert o.offline["verdict"]["cause"] == "ordering-cycle"
    assert o.offline["verdict"]["source"] == f"{dropin}:2"
    live = o.check("boot-graph", SC)
    assert live["cause"] == "ordering-cycle" and dropin in live["source"]
    assert o.chain["verdict"]["cause"] == "ordering-cycle"
    assert graph_verdict(o) == ("ordering-cycle", "ordering-cycle")


def test_admin_dropin_makes_a_cycle_through_sysinit_target(base: Path, tmp_path: Path) -> None:
    """modules-load ordered after an agent the boot requires that runs after sysinit.target,
    which is after modules-load. Offline and live both name the cycle edge by edge; systemd
    deleted a job to break it, and unit-state says so. (An agent with default dependencies
    makes the same cycle, and more through basic.target and sockets.target, where systemd
    may delete dbus.socket's job instead: the unit tests and the differential cover that
    one.)"""
    dropin = f"/etc/systemd/system/{ML}.d/50-agent.conf"

    def agent(rootfs: Path) -> None:
        write(rootfs, "/etc/systemd/system/some-agent.service",
              "[Unit]\nDescription=an agent\nDefaultDependencies=no\nAfter=sysinit.target\n"
              "[Service]\nType=oneshot\nExecStart=/bin/true\n"
              "[Install]\nRequiredBy=multi-user.target\n")
        # Required, not wanted: the boot's target needs the agent's job, so systemd must
        # break the cycle at modules-load's (wanted by sysinit.target). Systemd deletes a
        # job the target does not require, the first it meets walking the cycle, in a
        # hashmap's order, random per boot (src/core/transaction.c,
        # transaction_verify_order_one): with the agent wanted too, either may go.
        requires = rootfs / "etc/systemd/system/multi-user.target.requires"
        requires.mkdir(parents=True, exist_ok=True)
        (requires / "some-agent.service").symlink_to("/etc/systemd/system/some-agent.service")
        write(rootfs, dropin, "[Unit]\nAfter=some-agent.service\n")

    o = run_scenario(base, tmp_path, "agent-cycle", agent, show=("some-agent.service",))
    assert graph_verdict(o) == ("ordering-cycle", "ordering-cycle")
    assert o.offline["verdict"]["source"] == f"{dropin}:2"
    for chain in (o.offline, o.chain):
        steps = {(s["unit"], s["before"]) for s in chain["cycle"]}
        assert ("some-agent.service", ML) in steps and "sysinit.target" in str(steps)
    offline = {(s["unit"], s["before"]): s["source"] for s in o.offline["cycle"]}
    assert offline[("some-agent.service", ML)] == f"{dropin}:2"
    assert offline[("sysinit.target", "some-agent.service")] == \
        "/etc/systemd/system/some-agent.service:4"
    # systemd deleted modules-load's job (inactive): a unit of ours that lost its job says
    # so, and the agent ran. The manager logs the deletion before journald runs, which a
    # container loses (a real boot keeps it from the kernel log: the e2e "cycle" scenario).
    lost = [u for u in (ML, SC) if o.check("unit-state", u)["status"] != "passed"]
    assert ML in lost, "systemd deleted no job of ours"
    assert o.shown["some-agent.service"]["InactiveExitTimestampMonotonic"] != "0", o.shown
    for unit in lost:
        state = o.check("unit-state", unit)
        assert state["cause"] == "ordering-cycle", state
        assert "did not run" in state["reason"] and "ordering cycle" in state["reason"]


def test_empty_after_and_a_replaced_fragment_cannot_beat_the_dropin(
        base: Path, tmp_path: Path) -> None:
    """An admin fragment without After=, and a later drop-in with an empty After=: nftune's
    drop-in still orders the units, in the files and in the real systemd."""
    def override(rootfs: Path) -> None:
        write(rootfs, f"/etc/systemd/system/{SC}", "[Unit]\nDescription=Apply Kernel "
              "Variables\nDefaultDependencies=no\nBefore=sysinit.target\n\n[Service]\n"
              "Type=oneshot\nRemainAfterExit=yes\nExecStart=/lib/systemd/systemd-sysctl\n")
        write(rootfs, f"/etc/systemd/system/{SC}.d/zz-reset.conf", "[Unit]\nAfter=\n")

    o = run_scenario(base, tmp_path, "guarded", override)
    proof = o.check("ordering", SC)
    assert proof["status"] == "passed"
    assert proof["source"] == f"/etc/systemd/system/{SC}.d/nftune.conf:9"
    assert "zz-reset.conf:2 resets nothing" in proof["reason"]
    assert o.check("boot-graph", SC)["status"] == "passed"
    assert o.check("boot-order", SC)["status"] == "passed"
    assert o.value == "1"


def test_replaced_fragment_without_the_dropin_breaks_the_ordering(
        base: Path, tmp_path: Path) -> None:
    def override(rootfs: Path) -> None:
        (rootfs / f"etc/systemd/system/{SC}.d/nftune.conf").unlink()
        write(rootfs, f"/etc/systemd/system/{SC}", "[Unit]\nDefaultDependencies=no\n"
              "Before=sysinit.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
              "ExecStart=/lib/systemd/systemd-sysctl\n")

    o = run_scenario(base, tmp_path, "unordered", override)
    assert o.check("order-dropin", f"{SC}.d/nftune.conf")["cause"] == "file-missing"
    assert graph_verdict(o) == ("ordering-broken", "ordering-broken")
    assert o.chain["verdict"]["cause"] == "ordering-broken"


def test_missing_module_fails_modules_load(base: Path, tmp_path: Path) -> None:
    def bad(rootfs: Path) -> None:
        write(rootfs, "/etc/modules-load.d/zz-bad.conf", "nftune_no_such_module\n")

    o = run_scenario(base, tmp_path, "missing-module", bad)
    ml = o.check("unit-state", ML)
    assert ml["cause"] == "modules-load-failed"
    assert "nftune_no_such_module" in ml["reason"]
    assert o.check("module-exists", "nftune_no_such_module")["cause"] == "module-missing"
    assert o.chain["verdict"]["cause"] == "modules-load-failed"


def test_module_that_fails_to_load_fails_the_unit(base: Path, tmp_path: Path) -> None:
    """A module that exists but cannot be inserted fails the real unit; the journal
    names it."""
    def broken(rootfs: Path) -> None:
        write(rootfs, "/etc/modprobe.d/nftune-test.conf", "install nftune_broken /bin/false\n")
        write(rootfs, "/etc/modules-load.d/zz-broken.conf", "nftune_broken\n")

    o = run_scenario(base, tmp_path, "broken-module", broken)
    ml = o.check("unit-state", ML)
    assert (ml["cause"], ml["actual"]) == ("modules-load-failed", "failed")
    assert "Failed to insert module 'nftune_broken'" in ml["reason"], ml["reason"]
    assert o.chain["verdict"]["cause"] == "modules-load-failed"


def test_key_overridden_by_a_later_sysctl_file(base: Path, tmp_path: Path) -> None:
    local = "/etc/sysctl.d/99-zz-local.conf"

    def override(rootfs: Path) -> None:
        write(rootfs, local, "net.netfilter.nf_conntrack_tcp_be_liberal = 0\n")

    o = run_scenario(base, tmp_path, "overridden", override)
    boot = o.check("sysctl-boot", "net.netfilter.nf_conntrack_tcp_be_liberal")
    assert boot["cause"] == "overridden-by-file"
    assert boot["source"].endswith(f"{local}:1")
    assert o.value == "0"  # the real systemd-sysctl agrees with the prediction
    assert o.verify_rc == 1
    assert o.chain["ok"]  # the ordering itself is fine


def test_live_verify_service_stays_in_its_budget(base: Path, tmp_path: Path) -> None:
    """What nftune-verify.service runs, against a real manager: the import budget of
    tests/test_imports.py holds on the live path too (the bus, the journal, the report)."""
    from test_imports import imported, over_budget

    rootfs = copy_rootfs(base, tmp_path / "budget")
    try:
        nftune("apply", "--root", str(rootfs), ok=(0,))
        with booted(rootfs, f"nftune-budget-{os.getpid()}") as c:
            modules = imported(["verify", "--service", "--root", str(c.root),
                                "--bus-address", c.bus_address], tmp_path)
            report = json.loads((c.root / "run/nftune/report.json").read_text())
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    boot_graph = next(r for r in report["checks"] if r["check"] == "boot-graph")
    assert boot_graph["status"] == "passed", boot_graph  # it did talk to the manager
    assert over_budget("verify --service", modules) == []
