"""verify's one runner over specs.SPECS: every check has a spec, skipping is decided there
and only there, and the files no check could read are gathered in one pass."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from conftest import Commands, add_kernel, add_units, context, fake_live
from fakes import healthy

from nftune.context import Context
from nftune.result import CHECKS, Cause, Check, Status
from nftune.root import Root
from nftune.specs import SPECS, Cadence, Need, Spec
from nftune.verify import outcome, run, verify

TOP = Path(__file__).resolve().parents[1]


def test_every_check_has_one_spec_and_the_spec_its_family() -> None:
    specs = {s.check: s for s in SPECS}
    assert len(specs) == len(SPECS)
    assert set(specs) | {Check.FILE_READABLE} == set(Check)
    for check, spec in specs.items():
        assert spec.family == CHECKS[check].family, check
        module = __import__(f"nftune.checks.{spec.family}", fromlist=[spec.function])
        assert callable(getattr(module, spec.function)), spec


def test_the_documented_need_matches_the_spec() -> None:
    """result.CHECKS says tree, bus or live; the spec's needs say the same."""
    for spec in SPECS:
        names = {n.name for n in spec.needs}
        need = CHECKS[spec.check].needs
        if need == "live":
            assert "live" in names, spec.check
        elif need == "bus":
            assert "bus" in names and "live" not in names, spec.check
        else:
            assert not names & {"live", "bus"}, spec.check


def test_no_check_module_decides_skipping() -> None:
    """Only specs.py and the runner know what "not live" or "no bus" means."""
    for path in (TOP / "nftune/checks").glob("*.py"):
        text = path.read_text()
        for word in ("not_live", "NOT_LIVE", "NO_BUS", "wants_bus"):
            assert word not in text, f"{path.name} mentions {word}"
        names = {n.attr for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Attribute)}
        assert "live" not in names or path.name in ("boot.py", "conntrack.py", "work.py",
                                                     "nodesysctl.py"), \
            path.name


def test_boot_checks_are_what_a_file_or_the_boot_decides() -> None:
    runtime = {s.check for s in SPECS if s.cadence is Cadence.RUNTIME}
    assert runtime == {Check.MODULE_LOADED, Check.SYSCTL_VALUE, Check.CONNTRACK_SIZE,
                       Check.KUBE_PROXY, Check.RPS, Check.RFS, Check.RPS_NEW_DEVICES,
                       Check.NODE_SYSCTL_VALUE}


def made(ctx: Context) -> list[str]:
    raise AssertionError("a check whose need is missing was made")


def spec(*needs: Need, named: bool = True) -> Spec:
    return Spec(Check.SYSCTL_VALUE, "runtime", "sysctl_value", needs, Cadence.RUNTIME,
                named=(lambda ctx: [("a", {"expected": "1"}), ("b", {"note": "; why"})])
                if named else None)


NO = Need("no", lambda ctx: False, Cause.NOT_LIVE, lambda ctx: "not here")
YES = Need("yes", lambda ctx: True, Cause.NOT_APPLICABLE, made)  # type: ignore[arg-type]


def test_the_first_missing_need_skips_with_its_cause_for_each_subject(tree: Path) -> None:
    ctx = Context(Root(tree))
    [a, b] = outcome(ctx, spec(YES, NO, NO._replace(cause=Cause.NO_BUS)))
    assert (a.status, a.cause, a.subject, a.expected, a.reason) == (
        Status.SKIPPED, Cause.NOT_LIVE, "a", "1", "not here")
    assert b.reason == "not here; why"
    assert outcome(ctx, spec(NO, named=False)) == []
    assert outcome(ctx, spec(NO._replace(silent=True))) == []
    [failed, _] = outcome(ctx, spec(NO._replace(fails=True, hint=lambda ctx: "do this")))
    assert failed.status is Status.FAILED and failed.hint == "do this"


def test_an_image_skips_the_runtime_checks_by_name(tree: Path) -> None:
    add_kernel(tree, "6.1.0-test")
    report = verify(Context(Root(tree)))
    skipped = {(r.check, r.cause) for r in report.results if r.status is Status.SKIPPED}
    assert (Check.MODULE_LOADED, Cause.NOT_LIVE) in skipped
    assert (Check.SYSCTL_VALUE, Cause.NOT_LIVE) in skipped
    assert (Check.BOOT_ORDER, Cause.NOT_LIVE) in skipped
    assert (Check.KUBE_PROXY, Cause.NOT_LIVE) in skipped
    assert not {r.check for r in report.results} & {Check.BOOT_GRAPH, Check.UNIT_STATE,
                                                      Check.MODULE_TIMING}


def test_unreadable_files_come_first_whatever_read_them(tree: Path) -> None:
    """Gathered once every check ran, in the parts' order, not in the order of reading."""
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    (tree / "etc/sysctl.d").mkdir(parents=True)
    (tree / "etc/sysctl.d/50-fifo.conf").symlink_to("50-fifo.conf")  # a loop
    (tree / "etc/systemd/system/systemd-sysctl.service.d").mkdir(parents=True)
    (tree / "etc/systemd/system/systemd-sysctl.service.d/x.conf").mkdir()
    (tree / "etc/modules-load.d").mkdir(parents=True)
    os.mkfifo(tree / "etc/modules-load.d/a.conf")
    report = verify(Context(Root(tree)))
    unreadable = [r.subject for r in report.results if r.check == Check.FILE_READABLE]
    assert report.results[:len(unreadable)] == tuple(
        r for r in report.results if r.check == Check.FILE_READABLE)
    assert unreadable == ["/etc/modules-load.d/a.conf", "/etc/sysctl.d/50-fifo.conf",
                          "/etc/systemd/system/systemd-sysctl.service.d/x.conf"]


@pytest.mark.parametrize("family", ["boot"])
def test_chain_is_served_its_family_by_the_same_runner(tree: Path, family: str) -> None:
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    root = fake_live(tree, values={})
    commands = Commands()
    results = run(context(root, commands, bus=healthy()),
                  [s for s in SPECS if s.family == family])
    assert {r.check for r in results} == {Check.BOOT_GRAPH, Check.UNIT_STATE,
                                          Check.BOOT_ORDER, Check.MODULE_TIMING}
