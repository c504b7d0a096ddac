"""`nftune chain`: the critical chain with the verdict on top, live (fake bus) and offline;
and a bus that cannot be reached (the real adapter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LIB, add_kernel, add_units, write
from fakes import CAP, ML, SC, healthy, ran, skipped

from nftune.chain import build_chain, critical_chain
from nftune.cli import main
from nftune.context import Context
from nftune.errors import NftuneError
from nftune.root import Root
from nftune.verify import verify


def test_critical_chain_follows_the_latest_dependency() -> None:
    tree = critical_chain(healthy(), "sysinit.target")
    assert tree.unit == "sysinit.target" and tree.activated == 300_000
    [sc] = tree.children  # SC became active last before sysinit.target
    assert (sc.unit, sc.activating, sc.duration) == (SC, 120_000, 5_000)
    [ml] = sc.children
    assert (ml.unit, ml.label()) == (ML, f"{ML} @100ms +10ms")
    assert [c.unit for c in ml.children] == ["systemd-journald.socket"]


def test_units_on_the_proof_path_are_always_shown() -> None:
    bus = healthy()
    # A later dependency of sysctl would hide modules-load from a plain critical chain.
    bus.units["late.socket"] = ran("late.socket", 115, 0)
    bus.change(SC, after=(*bus.units[SC].after, "late.socket"))
    tree = critical_chain(bus, SC, keep=(ML,))
    assert [c.unit for c in tree.children] == ["late.socket", ML]


def test_a_failed_unit_of_the_proof_is_shown_with_its_state() -> None:
    bus = healthy().change(ML, active_state="failed", result="exit-code", active_enter=0)
    tree = critical_chain(bus, SC, keep=(ML,))
    assert [c.label() for c in tree.children] == [
        "systemd-journald.socket @60ms", f"{ML}  (failed, exit-code)"]


def test_live_chain_text_and_json(tree: Path) -> None:
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    assert main(["apply", "--root", str(tree)]) == 0
    chain = build_chain(Context(Root(tree), bus_factory=lambda _: healthy()), SC,
                        offline=False)
    assert chain.ok and chain.verdict.cause == "ok"
    lines = chain.lines()
    assert lines[0] == f"proven [ok]: {ML} finished before {SC} started, this boot"
    tree = lines[lines.index("") + 1:]
    assert tree == [f"{SC} @120ms +5ms",
                    f"└─{ML} @100ms +10ms",
                    "  └─systemd-journald.socket @60ms",
                    "    └─-.slice @0us"]
    data = chain.to_json()
    assert data["verdict"]["cause"] == "ok" and data["live"] is True
    assert data["chain"]["children"][0]["unit"] == ML
    assert data["chain"]["children"][0]["duration_us"] == 10_000


def test_live_chain_verdict_is_the_first_failure(root: Root) -> None:
    bus = healthy()
    bus.units[ML] = skipped(ML, CAP, after=("-.slice",))
    chain = build_chain(Context(root, bus_factory=lambda _: bus), SC, offline=False)
    assert not chain.ok
    assert chain.verdict.cause == "modules-load-skipped"
    assert chain.lines()[0] == ("NOT proven [modules-load-skipped]: skipped: "
                                "ConditionCapability=CAP_SYS_MODULE failed")
    assert chain.lines()[1].startswith("    hint: ")


def test_offline_chain_shows_the_line_behind_each_edge(tree: Path) -> None:
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    assert main(["apply", "--root", str(tree)]) == 0
    write(tree, f"{LIB}/kubelet.service",
          "[Unit]\nAfter=sysinit.target\n[Service]\nExecStart=/usr/bin/kubelet\n")
    write(tree, f"{LIB}/sysinit.target", "[Unit]\nDescription=System Initialization\n")
    chain = build_chain(Context(Root(tree)), "kubelet.service", offline=True)
    assert chain.ok and not chain.live
    lines = chain.lines()
    assert lines[0] == f"proven [ok]: {ML} < {SC} in the unit files (not booted)"
    assert lines[lines.index("") + 1:] == [
        "kubelet.service",
        f"└─sysinit.target  ({LIB}/kubelet.service:2)",
        f"  └─{SC}  ({LIB}/systemd-sysctl.service:6)",
        f"    └─{ML}  ({LIB}/systemd-sysctl.service:5)",
    ]


def test_offline_chain_names_a_masked_unit(tree: Path) -> None:
    add_units(tree)
    (tree / "etc/systemd/system").mkdir(parents=True)
    (tree / "etc/systemd/system" / ML).symlink_to("/dev/null")
    chain = build_chain(Context(Root(tree)), SC, offline=True)
    assert chain.verdict.cause == "unit-masked"
    assert chain.verdict.source == f"/etc/systemd/system/{ML}"


def test_bad_unit_name_is_a_usage_error(root: Root) -> None:
    with pytest.raises(NftuneError) as e:
        build_chain(Context(root), "../../etc/passwd", offline=True)
    assert e.value.exit_code == 2 and e.value.key == "UNIT"


# -- no bus: the real adapter, a socket that does not exist -----------------------------------

NOWHERE = "unix:path=/nonexistent/nftune-test-bus"


def test_chain_without_a_bus_says_no_bus(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    assert main(["apply", "--root", str(tree)]) == 0
    capsys.readouterr()
    rc = main(["chain", "--root", str(tree), "--bus-address", NOWHERE, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert data["verdict"]["cause"] == "no-bus"
    assert "--bus-address" in data["verdict"]["hint"]
    assert NOWHERE in data["verdict"]["reason"]
    # The files still give their proof, the work's checks included.
    assert [(c["check"], c["cause"]) for c in data["checks"]] == [
        ("boot", "no-bus"), ("ordering", "ok"), ("module-insert", "ok"), ("safety-net", "ok"),
        ("unit-work", "ok"), ("unit-work", "ok")]


def test_verify_without_a_bus_reports_no_bus(tree: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    assert main(["apply", "--root", str(tree)]) == 0
    capsys.readouterr()
    rc = main(["verify", "--root", str(tree), "--bus-address", NOWHERE])
    out = capsys.readouterr().out
    assert rc == 1
    [line] = [x for x in out.splitlines() if x.startswith("failed:")]
    assert line.startswith("failed: boot systemd [no-bus]: cannot connect to systemd on "
                           f"{NOWHERE}: ")


def test_no_bus_from_the_environment_never_tracebacks(tree: Path) -> None:
    add_units(tree)
    p = subprocess.run([sys.executable, "-m", "nftune", "chain"], capture_output=True,
                       text=True, env={"NFTUNE_BUS_ADDRESS": NOWHERE, "PATH": "/usr/bin:/bin"},
                       check=False)
    assert p.returncode == 1, p.stderr
    assert p.stdout.startswith("NOT proven [no-bus]: ")
    assert "hint:" in p.stdout and "Traceback" not in p.stderr


def test_a_config_error_is_not_hidden_behind_no_bus(
        tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, "/etc/nftune/nftune.conf", "[Modules]\nLoad=bad/name\n")
    assert main(["chain", "--root", str(tree), "--bus-address", NOWHERE]) == 2
    assert "/etc/nftune/nftune.conf:2" in capsys.readouterr().err


class DeafBus:
    """Connected, but the manager does not answer (auth refused, no systemd1 there)."""

    def unit(self, name: str) -> object:
        raise NftuneError("cannot read properties from the bus", hint="is systemd there?")

    def boot(self) -> object:
        return self.unit("")


def test_a_bus_that_does_not_answer_is_no_bus(tree: Path) -> None:
    add_units(tree)
    root = Root(tree, live=True)
    chain = build_chain(Context(root, bus_factory=lambda _: DeafBus()), SC, offline=False)
    assert (chain.verdict.check, chain.verdict.cause) == ("boot", "no-bus")
    assert chain.checks[1].check == "ordering"  # the files' proof, under that verdict
    report = verify(Context(root, bus_factory=lambda _: DeafBus()))
    [boot] = [r for r in report.results if r.check == "boot"]
    assert boot.cause == "no-bus" and "module-loaded" in {r.check for r in report.results}
