"""Hostile input: every input error is exit 2 with file:line, nothing is a traceback; only
regular files are read as files, never with a hang; names from the tree are data, escaped
on the console and left out of rendered files; output to a closed, full or broken stdout
ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import add_kernel, add_units, run, snapshot, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nftune import npd
from nftune.artifacts import Layer
from nftune.cli import main
from nftune.config import Config, load, parse
from nftune.kernel import ModuleChoice
from nftune.render import Facts, render
from nftune.root import Root

KEY = "net.netfilter.nf_conntrack_tcp_be_liberal"
CONF = "/etc/nftune/nftune.conf"


def nftune(*args: str, timeout: float = 30,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nftune", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)


# -- numbers, names, encodings ----------------------------------------------------------------

@pytest.mark.parametrize("line", ["[Verify]\nInterval=\u0665", "[Verify]\nInterval=\u00b2",
                                  "[Verify]\nInterval=" + "9" * 5000,
                                  "[RPS]\nFlowEntries=" + "1" * 5000,
                                  "[RPS]\nFlowEntries=\u0661\u0662",
                                  "[RPS]\nCPUs=0-" + "9" * 5000, "[RPS]\nCPUs=\u0661"])
def test_numbers_are_ascii_digits_in_range(tree: Path, line: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, CONF, line + "\n")
    rc, _, err = run(capsys, "config", "--root", str(tree))
    assert rc == 2 and f"{tree}{CONF}:2" in err and "Traceback" not in err
    assert len(err.splitlines()[0]) < len(str(tree)) + 300  # the echoed value is cut


def test_a_byte_order_mark_is_accepted(tree: Path) -> None:
    write(tree, CONF, "\ufeff[Sysctl]\nnet.core.somaxconn=4096\n")
    assert [s.key for s in load(Root(tree)).sysctls][-1] == "net/core/somaxconn"


def test_a_dropin_name_that_is_not_utf8_is_a_config_error(tree: Path) -> None:
    d = tree / "etc/nftune/nftune.conf.d"
    d.mkdir(parents=True)
    (d / os.fsdecode(b"\xff\x1b[2J.conf")).write_text("[Sysctl]\n")
    add_kernel(tree, "6.1.0")
    before = snapshot(tree)
    p = nftune("apply", "--root", str(tree), env={**os.environ, "LC_ALL": "C"})
    assert p.returncode == 2 and "\\xff\\x1b[2J.conf: a config file name is not printable" \
        in p.stderr and "\x1b" not in p.stderr
    assert snapshot(tree) == before  # nothing written, no temp file


def test_root_must_name_a_tree(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "verify", "--root", "")
    assert rc == 2 and "--root" in err


# -- only regular files, never a hang ---------------------------------------------------------

@pytest.mark.parametrize("what", ["fifo", "dir", "loop", "socket"])
def test_a_config_that_is_not_a_file_is_a_config_error(tree: Path, what: str) -> None:
    p = tree / "etc/nftune/nftune.conf.d/50-x.conf"
    p.parent.mkdir(parents=True)
    _make(p, what)
    r = nftune("config", "--root", str(tree), timeout=20)
    assert r.returncode == 2 and "50-x.conf" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def _make(p: Path, what: str) -> None:
    import socket

    if what == "fifo":
        os.mkfifo(p)
    elif what == "dir":
        p.mkdir()
    elif what == "loop":
        p.symlink_to(p.name)
    else:
        cwd = os.getcwd()
        os.chdir(p.parent)
        try:
            socket.socket(socket.AF_UNIX).bind(p.name)
        finally:
            os.chdir(cwd)


@pytest.mark.parametrize("where", ["/etc/sysctl.d/50-x.conf", "/etc/modules-load.d/x.conf",
                                   "/lib/modules/6.1.0/modules.dep",
                                   "/etc/systemd/system/systemd-sysctl.service.d/x.conf",
                                   "/usr/lib/systemd/system/systemd-modules-load.service",
                                   "/etc/udev/rules.d/90-nftune.rules"])
@pytest.mark.parametrize("what", ["fifo", "loop", "dir"])
def test_a_tree_file_that_is_not_a_file_fails_a_check_and_never_hangs(
        tree: Path, where: str, what: str) -> None:
    add_kernel(tree, "6.1.0")
    add_units(tree)
    assert nftune("apply", "--root", str(tree)).returncode == 0
    p = tree / where.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists():
        p.unlink()
    _make(p, what)
    r = nftune("verify", "--root", str(tree), "--json", timeout=20)
    assert r.returncode == 1, r.stderr
    checks = json.loads(r.stdout)["checks"]
    bad = [c for c in checks if c["cause"] == "unreadable"]
    assert bad and all(c["status"] == "failed" for c in bad), checks
    if "sysctl.d" in where:  # one entry's check; the others still run and pass
        assert any(c["check"] == "sysctl-boot" and c["status"] == "passed" for c in checks)


def test_a_huge_sysctl_file_is_read_in_bounded_memory(tree: Path) -> None:
    add_kernel(tree, "6.1.0")
    assert nftune("apply", "--root", str(tree)).returncode == 0

    def peak_kib() -> int:
        cmd = [sys.executable, "-c", "import resource, sys; from nftune.cli import main; "
               "main(sys.argv[1:]); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
               "verify", "--root", str(tree)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        return int(out.splitlines()[-1])

    small = peak_kib()
    line = b"net.ipv4.conf.eth0.rp_filter = 1\n"
    with open(tree / "etc/sysctl.d/50-huge.conf", "wb") as f:
        for _ in range(50_000_000 // (len(line) * 1000)):
            f.write(line * 1000)
    assert peak_kib() - small < 20_000  # KiB: a chunk and a line, not the file


# -- names from the tree are data -------------------------------------------------------------

def test_a_file_name_cannot_fake_a_line_or_move_the_cursor(
        tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_kernel(tree, "6.1.0")
    assert run(capsys, "apply", "--root", str(tree))[0] == 0
    write(tree, "/etc/sysctl.d/99-x\npassed: all good\x1b[2K\x9b.conf", f"{KEY} = 0\n")
    rc, out, _ = run(capsys, "verify", "--root", str(tree))
    assert rc == 1
    assert not any(line.startswith("passed: all good") for line in out.splitlines())
    assert "\x1b" not in out and "\x9b" not in out
    assert "99-x\\npassed: all good\\x1b[2K\\x9b.conf" in out
    rc, out, _ = run(capsys, "verify", "--root", str(tree), "--json")
    sources = [c["source"] for c in json.loads(out)["checks"] if c["source"]]
    assert any("99-x\npassed: all good\x1b[2K\x9b.conf" in s for s in sources)  # exact


@pytest.mark.parametrize("lang", ["C", "C.UTF-8", "POSIX"])
def test_names_that_are_not_utf8_print_in_any_locale(tree: Path, lang: str) -> None:
    add_kernel(tree, "6.1.0")
    assert nftune("apply", "--root", str(tree)).returncode == 0
    (tree / "etc/sysctl.d" / os.fsdecode(b"99-\xe9t\xe9.conf")).write_text(f"{KEY} = 0\n")
    env = {**os.environ, "LC_ALL": lang, "PYTHONIOENCODING": ""}
    r = nftune("verify", "--root", str(tree), env=env)
    assert r.returncode == 1 and "99-\\xe9t\\xe9.conf" in r.stdout, r.stderr
    r = nftune("verify", "--root", str(tree), "--json", env=env)
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False


def test_kernel_names_are_checked_before_they_reach_a_comment(tree: Path) -> None:
    for k in ("6.1.0", "6.2\nnf_evil", "6.3\x1b[31m", "x" * 100):
        add_kernel(tree, k)
    assert main(["apply", "--root", str(tree)]) == 0
    text = (tree / "etc/modules-load.d/nftune.conf").read_text()
    assert "nf_evil" not in text and "\x1b" not in text
    assert "# Checked against kernels: 6.1.0 and 3 more" in text
    assert [line for line in text.splitlines() if not line.startswith("#")] == ["nf_conntrack"]


def test_udev_lines_stay_under_udevs_limit_in_the_worst_case() -> None:
    """The longest config the parser accepts: thousands of drop-ins with the longest
    names, every module of the safety net."""
    name = "x" * 245
    texts = [(f"/etc/nftune/nftune.conf.d/{i:05d}{name}.conf",
              "[Modules]\nLoad=ip_vs br_netfilter\n[Sysctl]\nnet.bridge.bridge-nf-call-"
              "iptables=1\nnet.ipv4.vs.conntrack=1\n[Verify]\nPrometheusDirectory=/"
              + "/".join(["d" * 200] * 1) + "\n") for i in range(3000)]
    config = parse(texts)
    choices = [ModuleChoice(m, m.alternatives[0], False) for m in config.modules]
    for a in render(config, choices, Facts("0", "/usr/lib/systemd/systemd-sysctl",
                                           tuple("6.1.0-" + "9" * 58 for _ in range(999))),
                    Layer.ADMIN):
        assert max(len(line.encode()) for line in a.content.splitlines()) < 16384, a.path


def test_verify_fails_a_rules_file_udev_would_not_read(
        tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_kernel(tree, "6.1.0")
    assert run(capsys, "apply", "--root", str(tree))[0] == 0
    rules = tree / "etc/udev/rules.d/90-nftune.rules"
    rules.write_text(rules.read_text() + "# " + "x" * 16384 + "\n")
    rc, out, _ = run(capsys, "verify", "--root", str(tree), "--check", "safety-net")
    assert rc == 1 and "[unreadable]" in out and "16384" in out


# -- the config fuzz ---------------------------------------------------------------------------

ALPHABET = "[]=#;\\ \t\r\n\x00\x1b\u0661\u00b2\ufeffabcdefghijklmnopqrstuvwxyzASCDILMNPRSTVY" \
           "0123456789._-|/*?@+é\u2028"
SECTIONS = ["[Modules]", "[Sysctl]", "[Files]", "[RPS]", "[Verify]", "[Nope]"]
KEYS = ["Load", "SysctlPriority", "Mode", "Interfaces", "ExcludeInterfaces", "CPUs",
        "ExcludeIsolatedCPUs", "FlowEntries", "Interval", "Gate", "Repair",
        "PrometheusDirectory", "net.core.somaxconn", KEY, "-x.y"]
ini_line = st.one_of(st.sampled_from(SECTIONS), st.tuples(
    st.sampled_from(KEYS), st.one_of(st.text(ALPHABET, max_size=30),
                                     st.integers(-10, 10**30).map(str))).map("=".join),
    st.text(ALPHABET, max_size=40))
config_bytes = st.one_of(st.binary(max_size=200),
                         st.lists(ini_line, max_size=12).map(lambda ls: "\n".join(ls).encode()))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=config_bytes)
def test_any_config_is_exit_0_or_2_and_nothing_is_written_on_2(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="nftune-fuzz-") as t:
        tree = Path(t)
        add_kernel(tree, "6.1.0", ("nf_conntrack", "ip_vs"))
        (tree / "etc/nftune").mkdir(parents=True)
        (tree / "etc/nftune/nftune.conf").write_bytes(data)
        before = snapshot(tree)
        try:
            rc = main(["apply", "--root", str(tree)])
        except SystemExit as e:  # only argparse may exit, and never here
            raise AssertionError(f"exit {e.code}") from None
        assert rc in (0, 2)
        if rc == 2:
            assert snapshot(tree) == before


@pytest.mark.parametrize("value", ["\u00a04096", "4096\x9b", "40\u202e96", "4096\u2028"])
def test_a_value_with_an_invisible_character_is_refused(tree: Path, value: str) -> None:
    """It would reach the sysctl.d file raw; printable Unicode (é) is fine."""
    add_kernel(tree, "6.1.0")
    write(tree, CONF, f"[Sysctl]\nnet.core.somaxconn={value}\n")
    before = snapshot(tree)
    assert main(["apply", "--root", str(tree)]) == 2 and snapshot(tree) == before
    write(tree, CONF, "[Sysctl]\nkernel.domainname=café\n")
    assert isinstance(load(Root(tree)), Config) and main(["apply", "--root", str(tree)]) == 0


# -- stdout closed, full, or gone ---------------------------------------------------------------

JSON_VERBS = [["apply"], ["verify"], ["chain"], ["clean"], ["config"], ["rps", "show"],
              ["rps", "apply"], ["conntrack"]]


@pytest.fixture
def applied(tree: Path) -> Path:
    add_kernel(tree, "6.1.0")
    add_units(tree)
    return tree


@pytest.mark.parametrize("verb", JSON_VERBS, ids=" ".join)
def test_stdout_closed_full_or_broken_ends_quietly(applied: Path, verb: list[str]) -> None:
    argv = [sys.executable, "-m", "nftune", *verb, "--json", "--root", str(applied)]
    closed = subprocess.run(argv, stdout=None, stderr=subprocess.PIPE, text=True,
                            check=False, timeout=30, pass_fds=(), close_fds=True,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 3 and closed.stderr == \
        "nftune: error: write error: Bad file descriptor\n"
    with open("/dev/full", "w") as full:
        r = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, text=True, check=False,
                           timeout=30)
    assert r.returncode == 3 and r.stderr == \
        "nftune: error: write error: No space left on device\n"
    rd, wr = os.pipe()
    os.close(rd)  # the reader is gone before nftune writes: EPIPE for sure
    try:
        r = subprocess.run(argv, stdout=wr, stderr=subprocess.PIPE, text=True, check=False,
                           timeout=30)
    finally:
        os.close(wr)
    assert r.returncode == 3 and r.stderr == ""
    head = subprocess.run(f"{' '.join(argv)} | head -c1", shell=True, capture_output=True,
                          text=True, check=False, timeout=30)
    assert head.stdout in ("{", "[") and head.stderr == ""
    assert not list(applied.rglob(".#*"))


# -- node-problem-detector ---------------------------------------------------------------------

@pytest.mark.parametrize("report", [None, "", "{", "[]", '{"schema": 1}',
                                    '{"schema": 1, "finished": "x", "checks": []}',
                                    '{"schema": 1, "finished": NaN, "checks": []}',
                                    '{"schema": 1, "finished": 1e300, "checks": [], '
                                    '"boot_id": "b"}',
                                    '{"schema": 1, "finished": 1, "checks": [1], '
                                    '"boot_id": "b"}', "fifo"])
def test_npd_answers_unknown_for_a_report_it_cannot_trust(tree: Path, report: str | None,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    write(tree, "/proc/sys/kernel/random/boot_id", "b\n")
    (tree / "run/nftune").mkdir(parents=True)
    if report == "fifo":
        os.mkfifo(tree / "run/nftune/report.json")
    elif report is not None:
        (tree / "run/nftune/report.json").write_text(report)
    rc, out, err = run(capsys, "verify", "--npd", "--root", str(tree))
    assert rc == npd.UNKNOWN and out.strip() and not err


def test_npd_unknown_for_a_report_from_the_future() -> None:
    doc = {"schema": 1, "finished": time.time() + 3600, "checks": [], "boot_id": "b"}
    code, msg = npd.verdict(doc, "b", time.time(), 900)
    assert code == npd.UNKNOWN and "future" in msg


def test_npd_message_is_escaped() -> None:
    doc = {"schema": 1, "finished": 1.0, "boot_id": "b", "checks": [
        {"status": "failed", "cause": "x\n", "check": "\x1b", "subject": "s"}]}
    code, msg = npd.verdict(doc, "b", 2.0, 900)
    assert code == npd.PROBLEM and "\n" not in msg and "\x1b" not in msg


# -- what a review found: each once a traceback -----------------------------------------------

def test_deeply_nested_json_in_the_tree_is_ignored(tree: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    deep = "[" * 100_000
    for path in ("/var/lib/nftune/state.json", "/run/nftune/report.json",
                 "/run/nftune/repairs.json"):
        write(tree, path, deep)
    assert run(capsys, "clean", "--root", str(tree))[0] == 0
    assert run(capsys, "verify", "--npd", "--root", str(tree))[0] == npd.UNKNOWN


def test_a_report_with_a_huge_number_is_unknown(tree: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, "/proc/sys/kernel/random/boot_id", "b\n")
    write(tree, "/run/nftune/report.json",
          '{"schema": 1, "boot_id": "b", "checks": [], "finished": ' + "9" * 400 + "}")
    rc, out, _ = run(capsys, "verify", "--npd", "--root", str(tree))
    assert rc == npd.UNKNOWN and "damaged" in out


def test_metrics_for_a_huge_value_and_a_hostile_name(tree: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    add_kernel(tree, "6.1.0")
    write(tree, CONF, "[Sysctl]\nnet.core.somaxconn=" + "9" * 400 + "\n")
    assert run(capsys, "apply", "--root", str(tree))[0] == 0
    write(tree, "/etc/modules-load.d/x.conf", "\x1b]0;pwn\x07\n")
    os.mkfifo(tree / "etc/sysctl.d" / os.fsdecode(b"\xff.conf"))
    prom = tmp_path / "prom"
    prom.mkdir()
    rc, _, err = run(capsys, "verify", "--root", str(tree), "--prometheus", str(prom))
    assert rc == 1, err
    text = (prom / "nftune.prom").read_text()
    assert "\x1b" not in text and "\\\\x1b]0;pwn\\\\a" in text and "\\\\xff.conf" in text


def test_hostile_sysctl_d_lines_are_escaped_in_every_node_sysctl_output(
        tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Keys and values of any sysctl.d line reach the text, JSON, metrics and journal-bound
    outputs of node-sysctl only escaped: no terminal control, no bidi override."""
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    (tree / "etc/sysctl.d").mkdir(parents=True)
    (tree / "etc/sysctl.d/90-evil.conf").write_bytes(
        b"net.\x1b]0;pwn\x07 = \x1b[2J\nnet.ipv4.typo\x1b[31m = 1\xff\n"
        b"net.bridge.bridge-nf-call-iptables = \x1b[2Jx\n-net.\xe2\x80\xaeevil = 1\n")
    prom = tmp_path / "prom"
    prom.mkdir()
    rc, out, err = run(capsys, "verify", "--root", str(tree), "--prometheus", str(prom))
    assert rc == 1, err
    assert "node-sysctl net.\\x1b]0;pwn\\a, expected '\\x1b[2J' [unknown-key]" in out
    assert "node-sysctl net.\\u202eevil, expected '1'" in out
    rc, js, _ = run(capsys, "verify", "--root", str(tree), "--json")
    subjects = {c["subject"] for c in json.loads(js)["checks"] if c["check"] == "node-sysctl"}
    assert "net.bridge.bridge-nf-call-iptables" in subjects
    for text in (out, err, js, (prom / "nftune.prom").read_text()):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_no_online_cpu_is_an_error_not_a_crash(tree: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, "/sys/devices/system/cpu/online", "\n")
    rc, _, err = run(capsys, "rps", "apply", "--root", str(tree))
    assert rc == 3 and "no online CPU" in err


def test_a_sparse_giant_config_is_refused_without_reading_it(tree: Path) -> None:
    (tree / "etc/nftune").mkdir(parents=True)
    with open(tree / CONF.lstrip("/"), "wb") as f:
        f.truncate(64 << 30)  # 64 GiB of holes
    r = nftune("config", "--root", str(tree), timeout=30)
    assert r.returncode == 2 and "larger than" in r.stderr


@pytest.mark.parametrize("line", ["x" * 5000, "[Modules]\nLoad=" + "é" * 5000,
                                  "[Sysctl]\nnet." + "a" * 5000 + "..b=1",
                                  "[RPS]\nInterfaces=" + "/" * 5000])
def test_an_echoed_line_or_value_is_cut(tree: Path, line: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, CONF, line + "\n")
    rc, _, err = run(capsys, "config", "--root", str(tree))
    assert rc == 2 and len(err.splitlines()[0]) < len(str(tree)) + 300


@pytest.mark.parametrize(("name", "pattern", "want"), [
    ("nf_conntrack", "nf_conn*", True), ("nf_conntrack", "nf_conntrac[^x]", True),
    ("nf_conntrack", "nf_conntrac[!k]", False), ("nf_conntrack", "nf_conntrac\\k", True),
    ("nf_conntrack", "nf_conntrac?", True), ("a]", "a[]]", True), ("a[", "a[", None),
    ("nf_conntrack", "nf_conntrac[[:alpha:]]", None), ("a*", "a\\*", True),
    ("ab", "a\\*", False),
])
def test_patterns_match_as_glibc_fnmatch(name: str, pattern: str, want: bool | None) -> None:
    from nftune.glob import match

    assert match(name, pattern) is want


def test_patterns_agree_with_the_c_library_on_random_input() -> None:
    """glob.match against glibc's own fnmatch(3), flags 0, as kmod and udev call it."""
    import ctypes
    import random

    from nftune.glob import match

    libc = ctypes.CDLL("libc.so.6")
    rng = random.Random(26)
    compared = 0
    for _ in range(20000):
        pattern = "".join(rng.choice("ab*?[]!^\\-") for _ in range(rng.randint(0, 8)))
        name = "".join(rng.choice("ab]-^\\!*?[") for _ in range(rng.randint(0, 6)))
        mine = match(name, pattern)
        if mine is None:
            continue
        compared += 1
        theirs = libc.fnmatch(pattern.encode(), name.encode(), 0) == 0
        assert mine == theirs, (pattern, name)
    assert compared > 10000
