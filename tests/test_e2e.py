"""The end-to-end harness's own logic, without booting: what the host reads back from a
guest's serial console, and that a broken step is a failure, never a pass."""

from __future__ import annotations

import pytest

from e2e.__main__ import main
from e2e.scenarios import SCENARIOS, by_name
from e2e.vm import parse

SERIAL = """\
[    2.1] systemd[1]: Started nftune end-to-end test agent.
NFTUNE-E2E BEGIN boot=2
NFTUNE-E2E RESULT PASS value-at-boot expected=1 actual=1
    | verify: 13 checks: 13 passed, 0 failed, 0 skipped
NFTUNE-E2E RESULT FAIL verify-exit expected=0 actual=1
NFTUNE-E2E RESULT PASS no-nftune-files expected= actual=
NFTUNE-E2E END boot=2
[    9.9] reboot: Power down
"""


def test_parse_reads_results_and_output_of_one_boot() -> None:
    b = parse(SERIAL, 2)
    assert b.finished
    assert [(r.name, r.ok, r.expected, r.actual) for r in b.results] == [
        ("value-at-boot", True, "1", "1"), ("verify-exit", False, "0", "1"),
        ("no-nftune-files", True, "", "")]
    assert b.output == "    | verify: 13 checks: 13 passed, 0 failed, 0 skipped"


def test_a_boot_without_a_report_or_an_end_is_not_a_pass() -> None:
    assert parse(SERIAL, 1) == parse("", 1)  # no report for boot 1
    assert not parse("", 1).finished and not parse("", 1).results
    cut = SERIAL.split("NFTUNE-E2E END")[0]  # the guest died mid-step
    assert not parse(cut, 2).finished


def test_every_scenario_boots_at_least_once_and_names_are_unique() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(set(names)) == len(names)
    assert all(s.steps for s in SCENARIOS)
    assert by_name(["rpm"])[0].releases == ("bookworm",)


def test_cannot_run_is_exit_2_and_says_skipped(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["--release", "bookworm"]) == 2
    assert "SKIPPED" in capsys.readouterr().err
