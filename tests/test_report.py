"""Where verify's result goes besides the terminal: the report file, the journal (native
protocol, to a real datagram socket), Prometheus (checked by promtool) and
node-problem-detector (its exit codes, message length and config)."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Commands, add_kernel, add_units, context, fake_live, write

from nftune import journal, npd, prometheus
from nftune.apply import apply
from nftune.artifacts import Layer
from nftune.cli import main
from nftune.errors import NftuneError
from nftune.result import CAUSES, Cause, failed, passed, skipped
from nftune.root import Root

TOP = Path(__file__).resolve().parents[1]
PROMTOOL = shutil.which("promtool") or str(TOP / ".venv/bin/promtool")
KEY = "net.netfilter.nf_conntrack_tcp_be_liberal"
BOOT = "0b5ea5c5-6f1e-4d43-8b3e-6a7c2f1d9e01"


def decode(datagram: bytes) -> dict[str, str]:
    """journald's side of the native protocol."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (n,) = struct.unpack("<Q", datagram[nl + 1:nl + 9])
            value = datagram[nl + 9:nl + 9 + n]
            assert datagram[nl + 9 + n:nl + 10 + n] == b"\n"
            i = nl + 10 + n
        fields[key.decode()] = value.decode()
    return fields


def test_native_protocol_encoding() -> None:
    data = journal.encode({"MESSAGE": "one line", "NFTUNE_HINT": "two\nlines"})
    assert data.startswith(b"MESSAGE=one line\nNFTUNE_HINT\n")
    assert decode(data) == {"MESSAGE": "one line", "NFTUNE_HINT": "two\nlines"}
    with pytest.raises(ValueError):
        journal.encode({"_TRUSTED": "x"})  # fields journald sets itself


Cli = Callable[[list[str]], int]


@pytest.fixture
def live_tree(tree: Path, commands: Commands) -> Callable[[str], Cli]:
    """A fake running node with nftune applied, and the CLI that takes it for the running
    system (main's seams)."""
    def make(value: str) -> Cli:
        add_kernel(tree, "6.1.0-test", ("nf_conntrack",))
        add_units(tree)
        root = fake_live(tree, values={KEY.replace(".", "/"): value})
        write(tree, "/proc/sys/kernel/random/boot_id", BOOT + "\n")
        commands.allow("modprobe", "systemd-sysctl", "udevadm")
        apply(context(root, commands), Layer.ADMIN)
        # Never the host's bus: one that cannot be reached (the boot checks say no-bus).
        def no_bus(address: str | None) -> Any:
            raise NftuneError("cannot connect to the bus", hint="a test's node has none")

        return lambda argv: main(argv, host=root, runner=commands, bus_factory=no_bus)
    return make


def journal_entry(tree: Path, run: Callable[[], int], code: int) -> dict[str, str]:
    """The first entry a run sends to the tree's journal socket; the run exits `code`."""
    sock_path = tree / "run/systemd/journal/socket"
    sock_path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(sock_path))
        server.settimeout(5)
        assert run() == code
        return decode(server.recv(65536))


def test_failed_checks_go_to_the_journal_one_entry_each(
        tree: Path, live_tree: Callable[[str], Cli]) -> None:
    nftune = live_tree("0")
    entry = journal_entry(tree, lambda: nftune(["verify", "--journal", "--check",
                                                 "sysctl-value"]), 1)
    assert entry["MESSAGE_ID"] == journal.MESSAGE_ID_FAILED
    assert (entry["NFTUNE_CHECK"], entry["NFTUNE_SUBJECT"], entry["NFTUNE_CAUSE"],
            entry["NFTUNE_EXPECTED"], entry["NFTUNE_ACTUAL"]) == (
        "sysctl-value", KEY, "changed-at-runtime", "1", "0")
    assert entry["PRIORITY"] == "4" and entry["MESSAGE"].startswith("nftune: failed: ")


@pytest.mark.parametrize("journald", [True, False])
def test_a_repair_by_hand_is_in_the_journal_without_journal(
        tree: Path, live_tree: Callable[[str], Cli], journald: bool) -> None:
    """A repair changes the node: the journal hears of it whenever it runs; without a
    journal, a repair by hand still succeeds (the terminal says it)."""
    nftune = live_tree("0")
    if not journald:
        assert nftune(["verify", "--repair", "--check", "sysctl-value"]) == 0
        return
    entry = journal_entry(tree, lambda: nftune(["verify", "--repair", "--check",
                                                 "sysctl-value"]), 0)
    assert entry["MESSAGE_ID"] == journal.MESSAGE_ID_REPAIRED
    assert (entry["NFTUNE_OLD"], entry["NFTUNE_NEW"]) == ("0", "1"), entry


def test_no_journal_is_an_error_not_a_silence(tree: Path, live_tree: Callable[[str], Cli],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    nftune = live_tree("0")
    assert nftune(["verify", "--journal"]) == 3
    assert "cannot write to the journal" in capsys.readouterr().err


def test_report_file_and_npd_verdicts(tree: Path, live_tree: Callable[[str], Cli],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    nftune = live_tree("0")
    assert nftune(["verify", "--report", "--check", "sysctl-value"]) == 1
    doc = json.loads((tree / "run/nftune/report.json").read_text())
    assert (doc["schema"], doc["ok"], doc["boot_id"]) == (1, False, BOOT)
    assert abs(doc["finished"] - time.time()) < 60 and doc["duration_seconds"] >= 0
    capsys.readouterr()
    assert nftune(["verify", "--npd"]) == npd.PROBLEM
    assert capsys.readouterr().out == f"changed-at-runtime: sysctl-value {KEY}\n"
    assert nftune(["verify", "--npd", "--cause", "ordering-broken"]) == 0
    assert nftune(["verify", "--npd", "--max-age", "0"]) == npd.UNKNOWN
    write(tree, "/proc/sys/kernel/random/boot_id", "another\n")
    capsys.readouterr()
    assert nftune(["verify", "--npd"]) == npd.UNKNOWN
    assert "earlier boot" in capsys.readouterr().out


def test_npd_verdicts_and_message_length() -> None:
    now = time.time()
    long = "x" * 300
    doc = {"boot_id": BOOT, "finished": now, "checks": [
        {"status": "failed", "cause": "not-applied", "check": "rps", "subject": long},
        {"status": "failed", "cause": "loaded-late", "check": "module-timing", "subject": "m"},
        {"status": "passed", "cause": "ok", "check": "ordering", "subject": "s"}]}
    code, msg = npd.verdict(doc, BOOT, now, 900)
    assert code == npd.PROBLEM and len(msg) == npd.MAX_OUTPUT
    assert npd.verdict(doc, BOOT, now, 900, "loaded-late") == (
        npd.PROBLEM, "loaded-late: module-timing m")
    assert npd.verdict(doc, BOOT, now, 900, "unit-masked")[0] == npd.OK
    assert npd.verdict(None, BOOT, now, 900)[0] == npd.UNKNOWN
    assert npd.verdict(doc, BOOT, now + 1000, 900)[0] == npd.UNKNOWN
    assert npd.verdict(doc, None, now, 900)[0] == npd.UNKNOWN


def test_shipped_npd_config_is_current_and_has_what_npd_reads() -> None:
    # tools/gen-npd writes it
    shipped = json.loads((TOP / "packaging/node-problem-detector/nftune.json").read_text())
    assert shipped == npd.config("/usr/sbin/nftune")
    assert shipped["plugin"] == "custom" and shipped["source"]
    pc = shipped["pluginConfig"]
    assert set(pc) >= {"invoke_interval", "timeout", "max_output_length", "concurrency"}
    assert pc["max_output_length"] == npd.MAX_OUTPUT
    [cond] = shipped["conditions"]
    assert set(cond) == {"type", "reason", "message"}
    reasons = set()
    for rule in shipped["rules"]:
        assert set(rule) == {"type", "condition", "reason", "path", "args", "timeout"}
        assert rule["type"] in ("permanent", "temporary")
        assert rule["condition"] == cond["type"] and rule["reason"].isalnum()
        reasons.add(rule["reason"])
    # Every cause a failed check can carry has its reason.
    assert reasons == {npd.reason(c) for c in CAUSES} - {"Ok", "NotLive"}
    assert npd.reason("changed-at-runtime") == "ChangedAtRuntime"


RESULTS = (
    passed("ordering", "systemd-sysctl.service"),
    passed("boot-order", "systemd-sysctl.service"),
    failed("sysctl-value", KEY, Cause.CHANGED_AT_RUNTIME, expected="1", actual="0"),
    passed("sysctl-value", 'a "quoted"\\key'),
    skipped("module-loaded", "nf_conntrack", Cause.NOT_LIVE),
)


def test_prometheus_text_passes_promtool_and_says_what_it_should(tmp_path: Path) -> None:
    text = prometheus.render(RESULTS, {KEY: "0", "net.core.vector": "4096 87380"},
                             {KEY: "1"}, 1764115200.5, 0.042)
    lines = text.splitlines()
    assert (f'nftune_check_ok{{check="sysctl-value",subject="{KEY}",'
            f'cause="changed-at-runtime"}} 0') in lines
    assert 'nftune_check_ok{check="sysctl-value",subject="a \\"quoted\\"\\\\key",cause="ok"} 1' \
        in lines
    assert not any(x.startswith("nftune_check_ok{") and "module-loaded" in x
                   for x in lines)  # skipped: left out
    assert 'nftune_checks{status="skipped"} 1' in lines
    assert f'nftune_sysctl_value{{key="{KEY}"}} 0.0' in lines
    assert not any("net.core.vector" in x for x in lines)
    assert "nftune_ordering_proven 1" in lines
    assert "nftune_last_run_timestamp_seconds 1764115200.500" in lines
    if not Path(PROMTOOL).exists():
        pytest.fail(f"promtool not found ({PROMTOOL}): tools/bootstrap installs it")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    out = Path(prometheus.write(Root(tmp_path), "/", text))
    assert out.read_text() == text and [f.name for f in tmp_path.iterdir()] == ["nftune.prom"]


def test_a_subject_s_failure_is_never_hidden_behind_its_earlier_pass() -> None:
    """Two results may share a subject (a node's sysctl.d can spell one key two ways):
    its one series says failed when either failed."""
    text = prometheus.render((passed("node-sysctl", "net.a"),
                              failed("node-sysctl", "net.a", Cause.LOST_AT_BOOT),
                              passed("node-sysctl", "net.a")), {}, {}, 1764115200.5, 0.042)
    assert [x for x in text.splitlines() if x.startswith("nftune_check_ok{")] == [
        'nftune_check_ok{check="node-sysctl",subject="net.a",cause="lost-at-boot"} 0']


def test_verify_writes_the_prometheus_file(tree: Path, live_tree: Callable[[str], Cli],
                                           tmp_path: Path) -> None:
    nftune = live_tree("1")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    nftune(["verify", "--prometheus", str(textfiles)])
    text = (textfiles / "nftune.prom").read_text()
    assert f'nftune_sysctl_value{{key="{KEY}"}} 1.0' in text
    assert f'nftune_sysctl_wanted{{key="{KEY}"}} 1.0' in text



def test_shipped_alerting_rules_pass_promtool() -> None:
    rules = TOP / "packaging/prometheus/nftune.rules.yml"
    p = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True,
                       text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 4 rules found" in p.stdout
    # Every metric a rule uses is one nftune writes.
    import re

    used = set(re.findall(r"\bnftune_[a-z_]+", rules.read_text()))
    written = set(re.findall(r"^# TYPE (nftune_[a-z_]+)", prometheus.render(
        RESULTS, {}, {}, 0.0, 0.0), re.M))
    assert used <= written, used - written


def _series(text: str, **extra: str) -> dict[str, str]:
    """The samples of nftune.prom as a scrape stores them: node_exporter's job and
    instance labels added (series selector -> value)."""
    import re

    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, labels, value = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line).groups()
        more = ",".join(f'{k}="{v}"' for k, v in extra.items())
        out[f"{name}{{{', '.join(x for x in (labels, more) if x)}}}"] = value
    return out


def test_shipped_alerting_rules_fire_on_series_in_nftune_s_shape(tmp_path: Path) -> None:
    """promtool test rules: the shipped alerts against series rendered by nftune itself,
    as node_exporter's textfile collector exposes them, on a healthy and a broken node."""
    import yaml

    node = {"job": "node", "instance": "node-a:9100"}
    healthy = prometheus.render((passed("ordering", "systemd-sysctl.service"),
                                 passed("sysctl-value", KEY)), {KEY: "1"}, {KEY: "1"},
                                0.0, 0.05)
    broken = prometheus.render((RESULTS[0], RESULTS[2], failed(
        "boot-order", "systemd-sysctl.service", Cause.LOADED_LATE)),
                               {KEY: "0"}, {KEY: "1"}, 0.0, 0.05)

    def inputs(text: str, instance: str, runs: bool) -> list[dict[str, str]]:
        series = []
        for selector, value in _series(text, **{**node, "instance": instance}).items():
            if selector.startswith("nftune_last_run_timestamp_seconds"):
                # A run a minute, or none after the first one.
                series.append({"series": selector, "values": "0+60x60" if runs else "0x60"})
            else:
                series.append({"series": selector, "values": f"{value}x60"})
        return series

    failed_labels = {**node, "instance": "node-b:9100", "severity": "warning",
                     "check": "sysctl-value", "subject": KEY, "cause": "changed-at-runtime"}
    tests = {
        "rule_files": [str(TOP / "packaging/prometheus/nftune.rules.yml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": (inputs(healthy, "node-a:9100", True)
                             + inputs(broken, "node-b:9100", True)
                             + inputs(healthy, "node-c:9100", False)),
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "NftuneConntrackNotLiberal", "exp_alerts": []},
                {"eval_time": "6m", "alertname": "NftuneConntrackNotLiberal", "exp_alerts": [{
                    "exp_labels": {"instance": "node-b:9100", "key": KEY,
                                   "severity": "critical"},
                    "exp_annotations": {
                        "summary": "nf_conntrack_tcp_be_liberal is not nftune's value on "
                                   "node-b:9100",
                        "description": "Out-of-window packets will be marked INVALID and "
                                       "answered with resets on cross-node Service traffic "
                                       "(kube-proxy in IPVS or nftables mode)."}}]},
                {"eval_time": "11m", "alertname": "NftuneCheckFailed", "exp_alerts": [{
                    "exp_labels": failed_labels,
                    "exp_annotations": {
                        "summary": "nftune: sysctl-value failed on node-b:9100",
                        "description": f'sysctl-value {KEY} failed (changed-at-runtime). '
                                       'Run "nftune verify" on the node; "journalctl '
                                       'MESSAGE_ID=fa14c8a71f284adba5fa982e34c9d8cc" '
                                       "lists every failed check."}}, {
                    "exp_labels": {**failed_labels, "check": "boot-order",
                                   "subject": "systemd-sysctl.service",
                                   "cause": "loaded-late"},
                    "exp_annotations": {
                        "summary": "nftune: boot-order failed on node-b:9100",
                        "description": "boot-order systemd-sysctl.service failed "
                                       "(loaded-late). "
                                       'Run "nftune verify" on the node; "journalctl '
                                       'MESSAGE_ID=fa14c8a71f284adba5fa982e34c9d8cc" '
                                       "lists every failed check."}}]},
                {"eval_time": "11m", "alertname": "NftuneOrderingNotProven", "exp_alerts": [{
                    "exp_labels": {**node, "instance": "node-b:9100", "severity": "warning"},
                    "exp_annotations": {
                        "summary": "nftune cannot prove nf_conntrack loads before "
                                   "systemd-sysctl on node-b:9100",
                        "description": 'Run "nftune chain" on the node.'}}]},
                # node-c stopped reporting after its first run: stale after 30 minutes,
                # an alert 10 minutes later; node-a runs every minute and never is.
                {"eval_time": "39m", "alertname": "NftuneNotRunning", "exp_alerts": []},
                {"eval_time": "42m", "alertname": "NftuneNotRunning", "exp_alerts": [{
                    "exp_labels": {**node, "instance": "node-c:9100", "severity": "warning"},
                    "exp_annotations": {
                        "summary": "nftune has not checked node-c:9100 for 30 minutes",
                        "description": 'Is nftune-verify.timer enabled? "systemctl status '
                                       'nftune-verify.timer".'}}]},
            ],
        }],
    }
    spec = tmp_path / "nftune.rules.test.yml"
    spec.write_text(yaml.safe_dump(tests, sort_keys=False))
    if not Path(PROMTOOL).exists():
        pytest.fail(f"promtool not found ({PROMTOOL}): tools/bootstrap installs it")
    p = subprocess.run([PROMTOOL, "test", "rules", str(spec)], capture_output=True,
                       text=True, check=False, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


def test_the_service_s_boot_id_is_its_manager_s(tree: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In a container the unit's fresh /proc shows the kernel's boot ID; the one the unit
    hands in (%b) is the manager's, which npd's reader sees too. Only a UUID counts, and
    only on the running system."""
    from nftune.report import boot_id

    root = fake_live(tree)
    write(tree, "/proc/sys/kernel/random/boot_id", BOOT + "\n")
    container = "11111111-2222-4333-8444-555555555555"
    assert boot_id(root) == BOOT
    monkeypatch.setenv("NFTUNE_BOOT_ID", container)
    assert boot_id(root) == container
    monkeypatch.setenv("NFTUNE_BOOT_ID", container.replace("-", ""))  # as %b gives it
    assert boot_id(root) == container
    assert boot_id(Root(str(tree))) == BOOT  # an image: its own file
    for bad in ("not a uuid", container + "\n", "../../etc/shadow",
                "AAAAAAAA-2222-4333-8444-555555555555"):
        monkeypatch.setenv("NFTUNE_BOOT_ID", bad)
        assert boot_id(root) == BOOT, bad
    unit = (Path(__file__).resolve().parents[1] / "units/nftune-verify.service").read_text()
    assert "\nEnvironment=NFTUNE_BOOT_ID=%b\n" in unit
