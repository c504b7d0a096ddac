"""The end-to-end harness's own logic, without booting: what the host reads back from a
guest's serial console, and that a broken step is a failure, never a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e import __main__ as harness
from e2e.__main__ import main
from e2e.scenarios import SCENARIOS, Inputs, by_name
from e2e.vm import Boot, Hardware, boot_step, parse

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


def _fake_boots(monkeypatch: pytest.MonkeyPatch, serials: list[str]) -> list[int]:
    """vm.boot replaced by boots that print the given serial logs, one per call."""
    calls: list[int] = []

    def boot(image: Path, kernel: Path, initrd: Path, log: Path, number: int,
             timeout: float, hw: Hardware) -> Boot:
        serial = serials[len(calls)]
        calls.append(number)
        log.write_text(serial)
        log.with_suffix(".qemu.log").write_text("")
        return parse(serial, number)

    monkeypatch.setattr("e2e.vm.boot", boot)
    return calls


def test_a_silent_boot_is_booted_once_more(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    calls = _fake_boots(monkeypatch, ["[ 1.0] Kernel panic - not syncing", SERIAL])
    b = boot_step("bookworm/x#2", tmp_path, tmp_path, tmp_path, tmp_path / "serial.log", 2)
    assert calls == [2, 2] and b.finished and len(b.results) == 3
    assert "RETRY bookworm/x#2: no report from boot 2" in capsys.readouterr().out
    assert "Kernel panic" in (tmp_path / "serial-first.log").read_text()  # kept
    assert (tmp_path / "serial.log").read_text() == SERIAL


def test_only_once_and_never_a_boot_that_began(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    calls = _fake_boots(monkeypatch, ["", "", ""])
    b = boot_step("bookworm/x#1", tmp_path, tmp_path, tmp_path, tmp_path / "serial.log", 1)
    assert calls == [1, 1] and not b.reported  # a second silent boot fails the step
    died = SERIAL.split("NFTUNE-E2E RESULT")[0]  # began, then died: the step may have run
    calls = _fake_boots(monkeypatch, [died, SERIAL])
    b = boot_step("bookworm/x#2", tmp_path, tmp_path, tmp_path, tmp_path / "serial.log", 2)
    assert calls == [2] and b.reported and not b.finished


def test_a_plan_that_boots_nothing_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--release", "trixie", "--scenario", "rpm"])  # rpm runs on bookworm only
    assert e.value.code == 2
    assert "no scenario of rpm runs on trixie" in capsys.readouterr().err


def test_a_failed_assertion_prints_what_the_guest_printed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """CI keeps its log, not the logs directory: a FAIL comes with the step's output."""
    monkeypatch.setattr("e2e.vm.base_rootfs", lambda release: tmp_path)
    monkeypatch.setattr("e2e.vm.kernel_and_initrd", lambda base: (tmp_path, tmp_path))
    monkeypatch.setattr("e2e.vm.scenario_image", lambda *a: tmp_path / "image")
    monkeypatch.setattr("e2e.vm.remove_tree", lambda p: None)
    monkeypatch.setattr(harness, "WORK", tmp_path / "work")
    boots = [parse(SERIAL, 2), parse(SERIAL.replace("RESULT FAIL", "RESULT PASS"), 2)]
    monkeypatch.setattr("e2e.vm.boot_step", lambda *a: boots.pop(0))
    one = by_name(["drift"])[0]
    assert harness.run_scenario("bookworm", one, Inputs(None, None), tmp_path / "logs") == (2, 1)
    out = capsys.readouterr().out
    assert "--- what bookworm/drift#1 printed:\n    | verify: 13 checks" in out
    assert harness.run_scenario("bookworm", one, Inputs(None, None), tmp_path / "logs") == (3, 0)
    assert "printed:" not in capsys.readouterr().out  # a pass stays one line per result
