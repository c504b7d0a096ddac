"""Runtime drift: repair puts values back and says so; a value reset again within one
interval is contested and left alone, until it is right again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Commands, applied, write

from nftune import repair as drift
from nftune.cli import main
from nftune.context import Context
from nftune.result import Cause, CheckResult, Status, failed, passed
from nftune.root import Root

KEY = "net.netfilter.nf_conntrack_tcp_be_liberal"
PROC = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"


@pytest.fixture
def node(tree: Path, commands: Commands) -> Root:
    return applied(tree, commands, values={KEY.replace(".", "/"): "1"})


def changed(value: str) -> tuple[CheckResult, ...]:
    return (passed("ordering", "systemd-sysctl.service"),
            failed("sysctl-value", KEY, Cause.CHANGED_AT_RUNTIME, expected="1", actual=value))


def live_value(tree: Path) -> str:
    return (tree / PROC.lstrip("/")).read_text().strip()


def test_repair_puts_it_back_and_says_what_it_changed(node: Root, tree: Path) -> None:
    write(tree, PROC, "0\n")
    results, repairs = drift.repair(Context(node), changed("0"), 1000.0)
    assert repairs == [drift.Repair(KEY, "0", "1")]
    assert live_value(tree) == "1"
    [_, r] = results
    assert (r.status, r.cause, r.actual, r.reason) == (
        Status.PASSED, Cause.OK, "1", "repaired: was '0', changed at runtime")
    state = json.loads((tree / "run/nftune/repairs.json").read_text())
    assert state == {KEY: {"at": 1000.0, "from": "0"}}


def test_reset_again_within_an_interval_is_contested_and_left_alone(node: Root,
                                                                    tree: Path) -> None:
    write(tree, PROC, "0\n")
    drift.repair(Context(node), changed("0"), 1000.0)
    write(tree, PROC, "0\n")  # another tool sets it back
    results, repairs = drift.repair(Context(node), changed("0"), 1000.0 + 5 * 60)
    assert repairs == [] and live_value(tree) == "0"
    r = results[1]
    assert (r.status, r.cause, r.expected, r.actual) == (Status.FAILED, Cause.CONTESTED,
                                                         "1", "0")
    assert "another tool sets it" in r.reason and r.hint
    # Still contested much later: nftune never starts a tug of war again on its own...
    results, repairs = drift.repair(Context(node), changed("0"), 1000.0 + 3600)
    assert repairs == [] and results[1].cause is Cause.CONTESTED
    # ...until the value is right again; a later change is then repaired as news.
    drift.repair(Context(node), (passed("sysctl-value", KEY),), 5000.0)
    assert json.loads((tree / "run/nftune/repairs.json").read_text()) == {}
    _, repairs = drift.repair(Context(node), changed("0"), 9000.0)
    assert repairs == [drift.Repair(KEY, "0", "1")]


def test_a_change_after_a_full_interval_is_repaired_again(node: Root, tree: Path) -> None:
    write(tree, PROC, "0\n")
    drift.repair(Context(node), changed("0"), 1000.0)
    write(tree, PROC, "0\n")
    _, repairs = drift.repair(Context(node), changed("0"), 1000.0 + 5 * 60 + 121)
    assert repairs == [drift.Repair(KEY, "0", "1")]


def test_only_runtime_changes_are_repaired(node: Root) -> None:
    other = (failed("sysctl-value", KEY, Cause.OVERRIDDEN_BY_FILE, expected="1", actual="0"),
             failed("module-loaded", "nf_conntrack", Cause.NOT_LOADED))
    results, repairs = drift.repair(Context(node), other, 1000.0)
    assert results == other and repairs == []


def test_verify_repair_on_the_command_line(node: Root, tree: Path, commands: Commands,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NFTUNE_BUS_ADDRESS", f"unix:path={tree}/no-bus")  # none there
    write(tree, PROC, "0\n")
    assert main(["verify", "--check", "sysctl-value"], host=node, runner=commands) == 1
    assert main(["verify", "--check", "sysctl-value", "--repair"], host=node,
                runner=commands) == 0
    out = capsys.readouterr().out
    assert f"repaired: {KEY}: '0' -> '1' (changed at runtime)" in out
    assert live_value(tree) == "1"
