"""Processes are as hostile as trees: fake kube-proxies made as a pod would make them, seen
by the shipped binary inside nftune-verify.service's own sandbox, in a booted container.

The decoys (more than 40, with lower PIDs than the real one, plus zombies) run as an
unprivileged user, or as root without capabilities, or in a network or user namespace of
their own, each in its own mount namespace and chroot with a bind mount of the whole root;
one is a program with file capabilities started by that user. Their --config points at a
root-only file holding a random sentinel (directly, through a link in their root, through
/proc/…, through the bind mount, relative), at every YAML tag PyYAML knows with a bad
value, a FIFO, a 1 MiB and a 64 MiB file, tracefs, and a path with a newline. Beside them
run real stand-ins (root, the container's network namespace, CAP_NET_ADMIN): one whose
value conflicts with nftune's, one with a broken document, one pointing at procfs, one
whose path holds a newline and an escape.

Asserted: the sentinel appears nowhere (stdout, stderr, report.json, the journal's export,
the Prometheus file); every run finishes with a report; the decoys alone change nothing;
the real conflict fails among them; no output line is forged; the report is 0640 for
group adm.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require
from nspawn import Container, base_rootfs, booted, copy_rootfs
from readme import block
from test_packages import DEBS, KUBE_PROXY_CONFIG, STAND_IN, _why_not, sh

require(_why_not(), "NFTUNE_REQUIRE_PACKAGES", "hostile process tests")

FAKES = "/var/lib/fakes"
JAIL = f"{FAKES}/jail"
NEWLINE = "/etc/x\nfailed: FORGED\x1b[2J.conf"
TAGS = ("!!int ''", "!!float ''", "!!bool maybe", "!!timestamp x", "!!binary '!'",
        "!!null x", "!!omap 1", "!!pairs 1", "!!set 1", "!!seq x", "!!map x", "!!merge x",
        "!!python/object:os.system []", "!!python/name:os.system x", "!local x")
DECOY_CONFIGS = ("/host/root/secret", "/etc/kp-link.conf", "/proc/1/root/root/secret",
                 "/proc/self/root/host/root/secret", "host/root/secret", "/etc/fifo",
                 "/etc/1m.yaml", "/etc/64m.yaml", "/trace/trace_pipe",
                 *(f"/etc/tag-{i}.yaml" for i in range(len(TAGS))))
# How each decoy is made; with the newline's, the zombies and the file-capability program,
# 50 in all.
HOW = (["nobody"] * len(DECOY_CONFIGS) + ["nocaps"] * 12 + ["netns"] * 4 + ["userns"] * 4)
ZOMBIES = 4
TRUSTED_CONFIGS = ("/var/lib/kube-proxy/config.conf", "/var/lib/kube-proxy/bad.conf",
                   "/proc/self/status", "/var/lib/kube-proxy" + NEWLINE)

FAKES_SH = r"""#!/bin/sh
# Decoys named kube-proxy, made as a pod would make them. Each runs in its own mount
# namespace, chrooted into the jail, where /host is a bind mount of the whole root.
J=%(jail)s
decoy() {  # $1: nobody, nocaps, netns or userns; then kube-proxy's arguments
    how=$1; shift
    drop=
    nocaps="--inh-caps=-all --bounding-set=-all"
    case $how in
    nobody) drop="setpriv --reuid=65534 --regid=65534 --clear-groups $nocaps" ;;
    nocaps) drop="setpriv $nocaps" ;;
    esac
    ns=
    case $how in netns) ns="unshare -n" ;; userns) ns="unshare -U -r" ;; esac
    $ns unshare -m sh -c 'J=$0
        mount --rbind /usr "$J/usr"; mount --rbind / "$J/host"
        mount -t proc proc "$J/proc" 2>/dev/null; mount -t tracefs nodev "$J/trace" 2>/dev/null
        exec chroot "$J" "$@"' "$J" $drop /kp/kube-proxy "$@" &
}
i=0
for how in %(how)s; do
    set -- %(configs)s
    n=$(( i %% $# + 1 )); eval "cfg=\${$n}"
    decoy "$how" "--config=$cfg" --conntrack-max-per-core=1 --proxy-mode=ipvs \
        --conntrack-tcp-timeout-established=1s
    i=$((i + 1))
done
decoy nobody "--config=%(newline)s"
for z in $(seq %(zombies)d); do  # a parent that never reaps its kube-proxy child
    sh -c '%(fakes)s/z/kube-proxy & exec sleep 100000' &
done
# A program that CAP_NET_ADMIN comes with (file capabilities), started by nobody in the
# host's namespaces: its caller chose its argv.
setpriv --reuid=65534 --regid=65534 --clear-groups %(fakes)s/fcap/kube-proxy \
    -c 'while :; do sleep 3600; done' kube-proxy --config=/root/secret \
    --conntrack-max-per-core=1 --conntrack-tcp-timeout-established=1s &
exec sleep infinity
"""


def _jail(rootfs: Path, sentinel: str) -> None:
    """The decoys' root and files, and the stand-ins', written before the boot."""
    secret = rootfs / "root/secret"
    secret.write_text(f"{sentinel}\nkind: KubeProxyConfiguration\n")
    secret.chmod(0o600)
    jail = rootfs / JAIL.lstrip("/")
    for d in ("usr", "proc", "host", "etc", "kp", "trace"):
        (jail / d).mkdir(parents=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        (jail / link).symlink_to(f"usr/{link}")
    kp = jail / "kp/kube-proxy"
    kp.write_text(STAND_IN)
    kp.chmod(0o755)
    etc = jail / "etc"
    (etc / "kp-link.conf").symlink_to("/host/root/secret")
    os.mkfifo(etc / "fifo")
    (etc / "1m.yaml").write_text("kind: KubeProxyConfiguration\n" + "#" * (1 << 20))
    with open(etc / "64m.yaml", "w") as f:
        f.write("kind: KubeProxyConfiguration\n")
        f.truncate(64 << 20)
    for i, tag in enumerate(TAGS):
        (etc / f"tag-{i}.yaml").write_text(f"kind: KubeProxyConfiguration\nx: {tag}\n")
    (etc / NEWLINE.removeprefix("/etc/")).write_text(KUBE_PROXY_CONFIG)
    fakes = rootfs / FAKES.lstrip("/")
    (fakes / "z").mkdir()
    (fakes / "z/kube-proxy").write_text("#!/bin/sh\nexit 0\n")
    (fakes / "z/kube-proxy").chmod(0o755)
    (fakes / "fcap").mkdir()
    fcap = fakes / "fcap/kube-proxy"
    shutil.copy(rootfs / "usr/bin/dash", fcap)
    # VFS_CAP_REVISION_2 with the effective bit: CAP_NET_ADMIN permitted and effective.
    os.setxattr(fcap, "security.capability", struct.pack("<5I", 0x02000001, 1 << 12, 0, 0, 0))
    (fakes / "fakes.sh").write_text(FAKES_SH % {
        "jail": JAIL, "how": " ".join(HOW), "configs": " ".join(DECOY_CONFIGS),
        "newline": NEWLINE, "zombies": ZOMBIES, "fakes": FAKES})
    stand_in = rootfs / "usr/local/bin/kube-proxy"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    conf = rootfs / "var/lib/kube-proxy"
    conf.mkdir(parents=True)
    (conf / "config.conf").write_text(KUBE_PROXY_CONFIG)
    (conf / "bad.conf").write_text("kind: KubeProxyConfiguration\nconntrack:\n"
                                   "  maxPerCore: !!int ''\n")
    (conf / NEWLINE.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (conf / NEWLINE.lstrip("/")).write_text(KUBE_PROXY_CONFIG)


def kube_proxies(c: Container) -> list[int]:
    """The processes named kube-proxy in the container (its PID namespace), host PIDs."""
    ours = os.readlink(f"/proc/{c.leader}/ns/pid")
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "kube-proxy" and \
                    os.readlink(f"/proc/{pid}/ns/pid") == ours:
                out.append(int(pid))
        except OSError:
            continue
    return out


def wait_for(c: Container, n: int) -> None:
    deadline = time.monotonic() + 60
    while len(kube_proxies(c)) < n:
        log = c.enter("journalctl", "--no-pager", "-n", "30", "-u", "fakes.service",
                      "-u", "kube-proxy-*").stdout
        assert time.monotonic() < deadline, f"{len(kube_proxies(c))} of {n}:\n{log}"
        time.sleep(0.3)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Container, str]]:
    sentinel = "nftune-sentinel-" + secrets.token_hex(12)
    rootfs = copy_rootfs(base_rootfs(), tmp_path / "rootfs")
    sh("dpkg", f"--root={rootfs}", "-i", DEBS[-1])
    conf = rootfs / "etc/nftune/nftune.conf.d"
    conf.mkdir(parents=True, exist_ok=True)
    # A value kube-proxy writes at its start (its default 24h), which a container's own
    # network namespace may set (nf_conntrack_max it may not).
    (conf / "test.conf").write_text("[Sysctl]\n"
                                    "net.netfilter.nf_conntrack_tcp_timeout_established=600\n"
                                    "[Verify]\nPrometheusDirectory=/var/lib/node-exporter\n")
    (rootfs / "var/lib/node-exporter").mkdir(parents=True)
    sh("chroot", rootfs, "nftune", "apply")
    _jail(rootfs, sentinel)
    with booted(rootfs, f"nftune-hostile-{os.getpid()}") as c:
        yield c, sentinel


# Runs a command and reports what it and its children cost: their CPU time and the
# largest resident set among them (nsenter's own is far smaller than nftune's).
USAGE = """
import json, resource, subprocess, sys
p = subprocess.run(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(json.dumps({"cpu_seconds": round(r.ru_utime + r.ru_stime, 3),
                                         "max_rss_kib": r.ru_maxrss}))
sys.exit(p.returncode)
"""


def verify_here(c: Container, tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                              dict[str, float]]:
    """The shipped binary inside the container (its namespaces, root's capabilities), with
    what it cost: the worst case of the tests sizes the unit's bounds."""
    usage = tmp / "usage.json"
    p = subprocess.run([sys.executable, "-c", USAGE, str(usage), "nsenter", "-t",
                        str(c.leader), "-m", "-p", "-n", "/usr/sbin/nftune", "verify", *args],
                       capture_output=True, text=True, timeout=120, check=False)
    return p, json.loads(usage.read_text())


# The console's line for the processes ignored: how many, then each reason with its count
# and its first PIDs.
IGNORED_LINE = re.compile(
    r"skipped: kube-proxy kube-proxy \[untrusted\]: \d+ process(es)? named kube-proxy "
    r"ignored, as none could itself write what it would claim: "
    r"[^:;]+: \d+ \(PIDs? \d+(, \d+)*(, …)?\)(; [^:;]+: \d+ \(PIDs? \d+(, \d+)*(, …)?\))*")


def service_run(c: Container) -> tuple[int, dict, str]:
    """nftune-verify.service once, in its sandbox: its exit, its report, its journal."""
    cursor = c.enter("journalctl", "--show-cursor", "-n", "0", "--no-pager").stdout
    after = cursor.strip().rsplit("cursor: ", 1)[-1]
    run = c.enter("systemctl", "start", "nftune-verify.service")
    report = json.loads((c.root / "run/nftune/report.json").read_text())
    journal = subprocess.run(["nsenter", "-t", str(c.leader), "-m", "-p", "journalctl", "-o",
                              "export", "--no-pager", f"--after-cursor={after}"],
                             capture_output=True, timeout=60, check=True).stdout
    return run.returncode, report, journal.decode("utf-8", "surrogateescape")


LINE = re.compile(r"(nftune: )?(passed|failed|skipped): [a-z-]+ |    hint: |verify: \d+ checks: ")


def assert_no_forged_line(text: str) -> None:
    for line in text.splitlines():
        assert LINE.match(line), f"a line nftune did not write: {line!r}"


def test_pods_cannot_lie_to_the_kube_proxy_check(node: tuple[Container, str],
                                                  tmp_path: Path) -> None:
    c, sentinel = node
    start = c.enter("systemd-run", "--unit=fakes", "sh", f"{FAKES}/fakes.sh")
    assert start.returncode == 0, start.stderr
    decoys = len(HOW) + 1 + ZOMBIES + 1
    wait_for(c, decoys)

    # The decoys alone: ignored, one line; nothing fails, every run ends with a report.
    code, report, journal = service_run(c)
    kp = [r for r in report["checks"] if r["check"] == "kube-proxy"]
    assert [(r["subject"], r["status"], r["cause"]) for r in kp] == [
        ("kube-proxy", "skipped", "untrusted")], kp
    assert kp[0]["reason"].startswith(f"{decoys} processes named kube-proxy ignored"), kp
    unprivileged = HOW.count("nobody") + 1 + HOW.count("nocaps")
    for why in (f"exited: {ZOMBIES}", f"another user namespace than PID 1's: "
                f"{HOW.count('userns')}", f"another network namespace than PID 1's: "
                f"{HOW.count('netns')}", f"no CAP_NET_ADMIN: {unprivileged}",
                "privileged by a setuid or file-capability program (AT_SECURE): 1"):
        assert why in kp[0]["reason"], kp[0]["reason"]
    assert code == 0 and report["ok"], [r for r in report["checks"] if r["status"] == "failed"]
    # The README's example of that line has the shape of this one.
    [shown] = block("skipped: kube-proxy kube-proxy [untrusted]: 3 processes named kube-proxy "
                    "ignored, as none could itself write what it would claim: exited: 1 (PID "
                    "912); no CAP_NET_ADMIN: 2 (PIDs 977, 978)")
    printed = f"skipped: kube-proxy {kp[0]['subject']} [untrusted]: {kp[0]['reason']}"
    for line in (shown, printed):
        assert IGNORED_LINE.fullmatch(line), line
    seen = [journal, json.dumps(report)]

    # The real ones, started after the decoys (higher PIDs).
    for i, config in enumerate(TRUSTED_CONFIGS):
        run = c.inside("systemd-run", f"--unit=kube-proxy-{i}", "/usr/local/bin/kube-proxy",
                       f"--config={config}", "--v=2")
        assert run.returncode == 0, run.stderr
    wait_for(c, decoys + len(TRUSTED_CONFIGS))
    code, report, journal = service_run(c)
    assert code != 0 and not report["ok"]
    kp = [r for r in report["checks"] if r["check"] == "kube-proxy"]
    got = sorted((r["status"], r["cause"], r["reason"].split(":")[0]) for r in kp)
    assert [(s, cause) for s, cause, _ in got] == [
        ("failed", "kube-proxy-conflict"), ("failed", "kube-proxy-conflict"),
        ("skipped", "unreadable"), ("skipped", "unreadable"), ("skipped", "untrusted")], kp
    reasons = " ".join(r["reason"] for r in kp)
    assert "it sets net.netfilter.nf_conntrack_tcp_timeout_established to 86400, nftune " \
        "wants 600" in reasons
    assert "/proc/self/status (in kube-proxy[" in reasons and \
        "not on a file system that stores files" in reasons
    assert "bad.conf (in kube-proxy[" in reasons and "a value nftune does not accept" in reasons
    assert (c.root / "var/lib/node-exporter/nftune.prom").exists()
    seen += [journal, json.dumps(report),
             (c.root / "var/lib/node-exporter/nftune.prom").read_text()]
    # What nftune wrote there (its stdout, and its entries: "nftune: failed: …").
    unit_log = c.enter("journalctl", "-u", "nftune-verify.service", "-t", "nftune",
                       "-o", "cat", "--no-pager").stdout
    assert_no_forged_line(unit_log)

    # The same binary outside the sandbox (root, every capability): the same verdict.
    text, usage = verify_here(c, tmp_path)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert_no_forged_line(text.stdout)
    assert text.stderr == ""
    js, usage_json = verify_here(c, tmp_path, "--json")
    assert [(r["status"], r["cause"]) for r in json.loads(js.stdout)["checks"]
            if r["check"] == "kube-proxy"] == [(r["status"], r["cause"]) for r in kp]
    seen += [text.stdout, text.stderr, js.stdout, js.stderr]
    for where in seen:
        assert sentinel not in where
        assert sentinel.encode().hex() not in where

    # report.json is for root and group adm.
    st = os.stat(c.root / "run/nftune/report.json")
    directory = os.stat(c.root / "run/nftune")
    adm = next(int(line.split(":")[2]) for line in
               (c.root / "etc/group").read_text().splitlines() if line.startswith("adm:"))
    assert (st.st_mode & 0o7777, st.st_gid) == (0o640, adm)
    assert (directory.st_mode & 0o7777, directory.st_gid) == (0o2750, adm)

    # What the worst case of these runs cost: the unit's bounds are sized from it.
    out = Path(__file__).resolve().parents[1] / "build/artifacts/hostile"
    out.mkdir(parents=True, exist_ok=True)
    (out / "usage.json").write_text(json.dumps({"text": usage, "json": usage_json}) + "\n")
    limits = c.enter("systemctl", "show", "-P", "MemoryMax,LimitCPU", "nftune-verify.service")
    memory_max, limit_cpu = (int(v) for v in limits.stdout.split())
    assert max(usage["max_rss_kib"], usage_json["max_rss_kib"]) * 1024 * 4 < memory_max
    assert max(usage["cpu_seconds"], usage_json["cpu_seconds"]) * 10 < limit_cpu
