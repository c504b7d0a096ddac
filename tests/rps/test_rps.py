"""RPS and RFS on fake sysfs trees: selection, NUMA, isolated CPUs, RFS arithmetic,
writes, the mechanism for devices created later, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import add_cpus, add_nic, context, family, write

from nftune import chase
from nftune.cli import main
from nftune.config import Config, RpsConfig, parse
from nftune.context import Context
from nftune.errors import NftuneError
from nftune.result import Cause, CheckResult, Status
from nftune.root import Root
from nftune.rps import decide, sysfs
from nftune.rps import write as rps_write


def live(tree: Path, conf: str = "") -> tuple[Root, RpsConfig]:
    if conf:
        write(tree, "/etc/nftune/nftune.conf", conf)
    root = Root(tree, live=True)
    return root, parse([("/etc/nftune/nftune.conf", conf)] if conf else []).rps


def decisions(tree: Path, conf: str = "") -> dict[str, decide.Decision]:
    root, cfg = live(tree, conf)
    machine, nics = sysfs.read_machine(root), sysfs.read_nics(root)
    return {d.nic.name: d for d in decide.decide(cfg, machine, nics)}


def check_rps(root: Root, config: Config) -> list[CheckResult]:
    return family(Context(root, config=config), "rps")


def attr(tree: Path, nic: str, queue: str, name: str) -> str:
    return (tree / f"sys/class/net/{nic}/queues/{queue}/{name}").read_text().strip()


def test_default_selects_physical_nics_with_fewer_queues_than_cpus(tree: Path) -> None:
    add_cpus(tree, "0-3")
    add_nic(tree, "eth0", rx=1)
    add_nic(tree, "eth1", rx=2)
    add_nic(tree, "eth2", rx=4)  # a queue per CPU: RSS already spreads it
    add_nic(tree, "lo", physical=False)
    add_nic(tree, "veth12ab", physical=False)
    add_nic(tree, "br0", physical=False)
    add_nic(tree, "cali1234", physical=True)  # a CNI device, even with a device link
    add_nic(tree, "kube-ipvs0", physical=False)
    d = decisions(tree)
    assert (d["eth0"].selected, d["eth0"].mask, d["eth0"].flow_cnt) == (True, "f", 32768)
    assert (d["eth1"].selected, d["eth1"].flow_cnt) == (True, 16384)
    assert not d["eth2"].selected and "4 rx queues for 4 CPUs" in d["eth2"].reason
    assert d["veth12ab"].reason == "never: a virtual or CNI interface (veth*)"
    assert d["br0"].reason == "virtual: no device link in sysfs"
    assert d["cali1234"].reason == "never: a virtual or CNI interface (cali*)"
    assert not d["lo"].selected and not d["kube-ipvs0"].selected


def test_mode_on_selects_every_physical_nic_and_off_writes_nothing(tree: Path) -> None:
    add_cpus(tree, "0-3")
    add_nic(tree, "eth2", rx=4)
    assert decisions(tree, "[RPS]\nMode=on\n")["eth2"].selected
    root, _ = live(tree, "[RPS]\nMode=off\n")
    done = rps_write.apply(Context(root, config=parse([("x", "[RPS]\nMode=off\n")])))
    assert done == rps_write.Applied((), "Mode=off")
    assert attr(tree, "eth2", "rx-0", "rps_cpus") == "0"


def test_numa_node_cpus_with_fallback_to_all_online(tree: Path) -> None:
    add_cpus(tree, "0-7", nodes={0: "0-3", 1: "4-7", 2: "8-11"})  # node 2: all offline
    add_nic(tree, "eth0", numa=1)
    add_nic(tree, "eth1", numa=-1)
    add_nic(tree, "eth2", numa=2)
    d = decisions(tree)
    assert (d["eth0"].mask, d["eth0"].reason) == ("f0", "1 rx queue for 4 CPUs; NUMA node 1")
    assert (d["eth1"].mask, d["eth1"].reason) == ("ff", "1 rx queue for 8 CPUs; all online CPUs")
    assert d["eth2"].mask == "ff"


def test_isolated_and_nohz_full_cpus_are_left_out_unless_asked(tree: Path) -> None:
    add_cpus(tree, "0-7", isolated="2-3", nohz_full="6")
    add_nic(tree, "eth0")
    d = decisions(tree)["eth0"]
    assert (d.mask, d.reason) == ("b3", "1 rx queue for 5 CPUs; all online CPUs less "
                                        "isolated CPUs")
    assert decisions(tree, "[RPS]\nExcludeIsolatedCPUs=no\n")["eth0"].mask == "ff"


def test_an_unset_nohz_full_reads_as_no_cpu(tree: Path) -> None:
    add_cpus(tree, "0-3", nohz_full="(null)")  # as kernel 6.1 prints it
    add_nic(tree, "eth0")
    assert decisions(tree)["eth0"].mask == "f"
    write(tree, "/sys/devices/system/cpu/nohz_full", "garbage\n")
    with pytest.raises(NftuneError, match="nohz_full: cannot read the CPU list"):
        decisions(tree)
    [r] = check_rps(Root(tree, live=True), parse([]))  # verify goes on with its others
    assert (r.check, r.status, r.cause) == ("rps", Status.FAILED, Cause.NOT_APPLIED)


def test_explicit_cpus_and_interface_globs(tree: Path) -> None:
    add_cpus(tree, "0-7")
    for name in ("eth0", "eth1", "ens5"):
        add_nic(tree, name)
    d = decisions(tree, "[RPS]\nCPUs=0-1,4\nInterfaces=eth*\nExcludeInterfaces=eth1\n")
    assert (d["eth0"].mask, d["eth0"].reason) == ("13", "1 rx queue for 3 CPUs; CPUs=")
    assert d["eth1"].reason == "excluded by ExcludeInterfaces=eth1"
    assert d["ens5"].reason == "not in Interfaces=eth*"


def test_cpus_naming_an_offline_cpu_is_an_error_with_file_line_and_hint(tree: Path) -> None:
    add_cpus(tree, "0-3", possible="0-7")
    add_nic(tree, "eth0")
    with pytest.raises(NftuneError) as e:
        decisions(tree, "[RPS]\nCPUs=2-5\n")
    assert str(e.value) == ("/etc/nftune/nftune.conf:2: CPUs=2-5: CPU 4-5 is offline or "
                            "does not exist on this machine")
    assert e.value.hint == "online CPUs here: 0-3; or write CPUs=auto"


@pytest.mark.parametrize(("entries", "queues", "table", "per_queue"), [
    (32768, 1, 32768, 32768), (32768, 3, 32768, 16384), (32768, 8, 32768, 4096),
    (1000, 1, 1024, 1024), (1000, 3, 1024, 512), (5, 2, 8, 4), (1, 2, 1, 1),
    (0, 4, 0, 0)])
def test_rfs_arithmetic(tree: Path, entries: int, queues: int, table: int,
                        per_queue: int) -> None:
    add_cpus(tree, "0-15")
    add_nic(tree, "eth0", rx=queues)
    d = decisions(tree, f"[RPS]\nFlowEntries={entries}\n")["eth0"]
    assert (decide.pow2(entries), d.flow_cnt) == (table, per_queue)


@pytest.fixture(params=["a tree's files", "sysfs"])
def attrs_on(request: pytest.FixtureRequest, tree: Path,
             monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways attributes are opened: type-checked (a tree's fake sysfs) and at once (a
    kernel file system; here the tmp tree's own file system stands for sysfs)."""
    if request.param == "sysfs":
        lib = chase._lib()
        assert lib is not None
        fd = os.open(tree, os.O_PATH)
        try:
            monkeypatch.setattr(chase, "KERNEL_FS", {*chase.KERNEL_FS, lib.fs_type(fd)})
        finally:
            os.close(fd)
    return str(request.param)


def test_apply_writes_masks_and_rfs_once(tree: Path, attrs_on: str) -> None:
    add_cpus(tree, "0,2,4-5", possible="0-7")  # sparse online CPUs
    add_nic(tree, "eth0", rx=2)
    add_nic(tree, "veth0", physical=False)
    root, _ = live(tree)
    done = rps_write.apply(Context(root, config=parse([])))
    assert {w.path.split("/", 4)[-1]: w.new for w in done.writes} == {
        "eth0/queues/rx-0/rps_cpus": "35", "eth0/queues/rx-0/rps_flow_cnt": "16384",
        "eth0/queues/rx-1/rps_cpus": "35", "eth0/queues/rx-1/rps_flow_cnt": "16384",
        "core/rps_sock_flow_entries": "32768"}
    assert attr(tree, "eth0", "rx-1", "rps_cpus") == "35"
    assert attr(tree, "veth0", "rx-0", "rps_cpus") == "0"
    assert rps_write.apply(Context(root, config=parse([]))).writes == ()  # nothing differs any more
    # The kernel prints masks zero-padded; the same set is not rewritten.
    write(tree, "/sys/class/net/eth0/queues/rx-0/rps_cpus", "00000035\n")
    assert rps_write.apply(Context(root, config=parse([]))).writes == ()


DEVPATH = "/devices/pci0000:00/0000:00:03.0/virtio3/net/{}/queues/rx-0"


def pci_nic(tree: Path, name: str) -> None:
    """A NIC whose /sys/class/net entry has its device directory behind it, as in sysfs."""
    add_nic(tree, name)
    device = tree / "sys" / DEVPATH.format(name).lstrip("/").rsplit("/queues", 1)[0]
    device.parent.mkdir(parents=True, exist_ok=True)
    device.symlink_to(tree / f"sys/class/net/{name}")


def test_one_interface_from_a_udev_devpath_renamed_or_not(tree: Path) -> None:
    add_cpus(tree, "0-3")
    add_nic(tree, "eth0")
    pci_nic(tree, "enp1s0")  # udev renamed eth0 -> enp1s0 before the queue's event ran
    root, _ = live(tree)
    assert sysfs.interfaces_at(root, DEVPATH.format("enp1s0")) == ["enp1s0"]
    only = sysfs.interfaces_at(root, DEVPATH.format("eth0"))
    assert only == ["enp1s0"]  # not the other NIC that is called eth0 now
    done = rps_write.apply(Context(root, config=parse([])), only)
    assert {w.path for w in done.writes} >= {"/sys/class/net/enp1s0/queues/rx-0/rps_cpus"}
    assert not any("eth0" in w.path for w in done.writes)


@pytest.mark.parametrize("bad", [
    "/devices/virtual/net/../../../etc/queues/rx-0", "/net/eth0/queues/tx-0",
    "/devices/x/net/a b/queues/rx-0", "rx-0", "/devices/x/net/0123456789abcdefg/queues/rx-0",
    "/devices/x/net/../queues/rx-0", "/devices/../../etc/net/eth0/queues/rx-0",
    "/sys/devices/x/net/eth0/queues/rx-0", "/devices//x/net/eth0/queues/rx-0"])
def test_bad_devpaths_are_refused(bad: str) -> None:
    with pytest.raises(NftuneError, match="not a receive queue's device path"):
        sysfs.parse_devpath(bad)


def test_invalid_names_in_sysfs_are_never_followed(tree: Path) -> None:
    add_cpus(tree, "0-3")
    add_nic(tree, "eth0")
    root, _ = live(tree)
    assert sysfs.read_nics(root, ["../../../etc"]) == []
    assert [n.name for n in sysfs.read_nics(root, ["eth0"])] == ["eth0"]


@pytest.mark.parametrize(("conf", "needle"), [
    ("[RPS]\nMode=fast\n", "Mode must be auto, on or off"),
    ("[RPS]\nCPUs=0-x\n", "invalid CPU list"),
    ("[RPS]\nCPUs=3-1\n", "runs backwards"),
    ("[RPS]\nInterfaces=eth0/../lo\n", "invalid interface name or glob"),
    ("[RPS]\nExcludeInterfaces=..\n", "invalid interface name or glob"),
    ("[RPS]\nFlowEntries=-1\n", "FlowEntries must be a number"),
    ("[RPS]\nFlowEntries=999999999999\n", "FlowEntries must be a number"),
    ("[RPS]\nExcludeIsolatedCPUs=maybe\n", "must be yes or no"),
])
def test_bad_rps_settings(conf: str, needle: str) -> None:
    with pytest.raises(NftuneError, match=needle) as e:
        parse([("/etc/nftune/nftune.conf", conf)])
    assert (e.value.path, e.value.line) == ("/etc/nftune/nftune.conf", 2)


def test_default_mask_on_kernels_that_have_it(tree: Path) -> None:
    add_cpus(tree, "0-3", default_mask="0")
    add_nic(tree, "eth0")
    add_nic(tree, "eth9", rx=4, mask="f")  # inherited from rps_default_mask, not selected
    add_nic(tree, "eth8", rx=4, mask="3")  # an admin's own mask: kept
    root, _ = live(tree)
    rps_write.apply(Context(root, config=parse([])))
    assert (tree / "proc/sys/net/core/rps_default_mask").read_text().strip() == "f"
    # Now the default is in effect: eth9's copy of it goes.
    rps_write.apply(Context(root, config=parse([])))
    assert attr(tree, "eth9", "rx-0", "rps_cpus") == "0"
    assert attr(tree, "eth8", "rx-0", "rps_cpus") == "3"


def test_no_default_mask_when_numa_nodes_differ(tree: Path) -> None:
    add_cpus(tree, "0-7", nodes={0: "0-3", 1: "4-7"}, default_mask="0")
    root, cfg = live(tree)
    assert decide.default_mask(cfg, sysfs.read_machine(root)) is None
    _, cfg = live(tree, "[RPS]\nCPUs=0-5\n")
    assert decide.default_mask(cfg, sysfs.read_machine(root)) == "3f"


def by_check(root: Root, conf: str = "") -> dict[tuple[str, str], object]:
    config = parse([("/etc/nftune/nftune.conf", conf)] if conf else [])
    return {(r.check, r.subject): r for r in check_rps(root, config)}


def test_verify_reports_expected_and_actual_then_passes_after_apply(tree: Path) -> None:
    add_cpus(tree, "0-3")
    add_nic(tree, "eth0", rx=2)
    write(tree, "/etc/udev/rules.d/90-nftune-rps.rules", "# Generated by nftune\n")
    root, _ = live(tree)
    r = check_rps(root, parse([]))
    bad = {(x.check, x.subject): x for x in r}
    eth0 = bad[("rps", "eth0")]
    assert (eth0.status, eth0.cause, eth0.expected, eth0.actual, eth0.reason) == (
        Status.FAILED, Cause.NOT_APPLIED, "rps_cpus=f rps_flow_cnt=16384",
        "rps_cpus=0 rps_flow_cnt=0", "2 of 2 rx queues, first rx-0")
    assert bad[("rfs", "net.core.rps_sock_flow_entries")].actual == "0"
    new = bad[("rps-new-devices", "devices created later")]
    assert (new.status, new.actual) == (Status.PASSED, "udev")
    assert "no rps_default_mask" in new.reason
    rps_write.apply(Context(root, config=parse([])))
    assert all(x.status is Status.PASSED for x in check_rps(root, parse([])))


def test_verify_without_the_udev_rule_and_with_a_default_mask(tree: Path) -> None:
    add_cpus(tree, "0-3", default_mask="0")
    add_nic(tree, "eth0")
    root, _ = live(tree)
    [*_, new] = check_rps(root, parse([]))
    assert (new.cause, new.expected) == (Cause.FILE_MISSING, "90-nftune-rps.rules")
    write(tree, "/usr/lib/udev/rules.d/90-nftune-rps.rules", "# Generated by nftune\n")
    [*_, new] = check_rps(root, parse([]))
    assert (new.cause, new.expected, new.actual) == (
        Cause.NOT_APPLIED, "rps_default_mask=f", "rps_default_mask=0")
    rps_write.apply(Context(root, config=parse([])))
    [*_, new] = check_rps(root, parse([]))
    assert new.status is Status.PASSED and "rps_default_mask" in new.reason


def test_read_only_sysfs_is_skipped_with_the_reason(tree: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    add_cpus(tree, "0-3", default_mask="0")  # a container on a 6.3+ host kernel
    add_nic(tree, "eth0")
    write(tree, "/usr/lib/udev/rules.d/90-nftune-rps.rules", "# Generated by nftune\n")
    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "fstatvfs", lambda fd: ReadOnly())  # only read_only() asks
    root, _ = live(tree)
    done = rps_write.apply(Context(root, config=parse([])))
    assert done.writes == () and done.skipped == "/sys/class/net is read-only (a container?)"
    by = {r.check: r for r in check_rps(root, parse([]))}
    assert (by["rps"].status, by["rps"].cause) == (Status.SKIPPED, Cause.READ_ONLY)
    new = by["rps-new-devices"]
    assert (new.status, new.cause, new.expected) == (Status.SKIPPED, Cause.READ_ONLY,
                                                     "rps_default_mask=f")


def test_not_live_and_image_trees_are_skipped(tree: Path) -> None:
    root = Root(tree, live=False)
    [r] = check_rps(root, parse([]))
    assert (r.status, r.cause) == (Status.SKIPPED, Cause.NOT_LIVE)
    assert rps_write.apply(Context(root, config=parse([]))).skipped == sysfs.NO_SYSFS


def test_show_and_its_json(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_cpus(tree, "0-3")
    add_nic(tree, "eth0", rx=2)
    add_nic(tree, "veth0", physical=False)
    assert main(["rps", "apply", "--root", str(tree)]) == 0
    assert "rps: 5 values set" in capsys.readouterr().out
    assert main(["rps", "show", "--root", str(tree)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "mode: auto; online CPUs: 0-3; devices created later: the udev rule"
    assert out[1].split() == ["INTERFACE", "QUEUE", "WANTED", "ACTUAL", "FLOW_CNT", "NUMA"]
    assert out[2].split()[:6] == ["eth0", "rx-0", "f", "f", "16384", "-"]
    assert "selected: 2 rx queues for 4 CPUs; all online CPUs" in out[2]
    assert "skipped: never: a virtual or CNI interface (veth*)" in out[4]
    assert main(["rps", "show", "--root", str(tree), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [eth0, veth0] = data["interfaces"]
    assert (eth0["mask"], eth0["cpus"], eth0["queues"][1]) == (
        "f", "0-3", {"queue": "rx-1", "wanted": "f", "actual": "f", "flow_cnt": "16384",
                     "ok": True})
    assert (veth0["selected"], veth0["mask"], data["new_devices"]) == (False, None, "udev")


@pytest.mark.parametrize("cpus", ["0-3,8", "0-1,8", "1,2"])
def test_show_with_a_cpu_the_machine_lacks_says_why_as_apply_does(
        tree: Path, cpus: str, capsys: pytest.CaptureFixture[str]) -> None:
    add_cpus(tree, "0-1", default_mask="0")
    add_nic(tree, "eth0")
    write(tree, "/etc/nftune/nftune.conf", f"[RPS]\nCPUs={cpus}\n")
    assert main(["rps", "apply", "--root", str(tree)]) == 2
    applied = capsys.readouterr().err
    assert main(["rps", "show", "--root", str(tree)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "CPUs= is not valid here" in out
    assert applied.splitlines()[0].removeprefix("nftune: error: ") in out, (applied, out)


def test_show_on_an_image_says_why_nothing(tree: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rps", "show", "--root", str(tree)]) == 0
    assert capsys.readouterr().out.strip() == f"rps: {sysfs.NO_SYSFS}"


def test_the_udev_rule_starts_nothing_for_virtual_devices_and_mode_off_masks_it(
        tree: Path) -> None:
    from nftune.apply import apply
    from nftune.artifacts import Layer

    root = Root(tree)
    apply(context(root), Layer.ADMIN)
    rule = (tree / "etc/udev/rules.d/90-nftune-rps.rules").read_text()
    lines = [x for x in rule.splitlines() if x and not x.startswith("#")]
    # Every line before the RUN jumps past it for virtual devices.
    run = next(i for i, x in enumerate(lines) if "RUN+=" in x)
    assert 'DEVPATH=="/devices/virtual/*", GOTO="nftune_rps_end"' in lines[:run]
    assert lines[run] == 'RUN+="/usr/sbin/nftune rps apply --devpath $devpath"'
    write(tree, "/etc/nftune/nftune.conf", "[RPS]\nMode=off\n")
    apply(context(root), Layer.ADMIN)
    rule = (tree / "etc/udev/rules.d/90-nftune-rps.rules").read_text()
    assert rule.startswith("# Generated by nftune")
    assert not [x for x in rule.splitlines() if x and not x.startswith("#")]


@pytest.mark.parametrize(("possible", "online", "mask"), [
    (1, "0", "1"),
    (2, "0-1", "3"),
    (31, "0-29", "3fffffff"),  # the last CPU offline
    (32, "0-31", "ffffffff"),
    (33, "0-31", "0,ffffffff"),  # possible but offline: a zero bit, the mask keeps its width
    (64, "0-62", "7fffffff,ffffffff"),
    (65, "0-31,33-64", "1,fffffffe,ffffffff"),  # a hole in the middle
    (256, "0,255", "80000000," + ",".join(["00000000"] * 6) + ",00000001"),
    (1024, "0-1023", ",".join(["ffffffff"] * 32)),
])
def test_masks_on_machines_of_every_size(tree: Path, possible: int, online: str,
                                         mask: str) -> None:
    add_cpus(tree, online, possible=f"0-{possible - 1}")
    add_nic(tree, "eth0")
    root, _ = live(tree, "[RPS]\nMode=on\n")
    d = decisions(tree, "[RPS]\nMode=on\n")["eth0"]
    assert d.mask == mask
    rps_write.apply(Context(root, config=parse([("x", "[RPS]\nMode=on\n")])))
    assert attr(tree, "eth0", "rx-0", "rps_cpus") == mask
    assert [r.status for r in check_rps(root, parse([("x", "[RPS]\nMode=on\n")]))
            if r.check == "rps"] == [Status.PASSED]
