"""kube-proxy seen from the node: KubeProxyConfiguration in each mode (fixtures written by
hand from the fields the upstream type documents: kubeproxy.config.k8s.io/v1alpha1), its
flags, what it writes at its next start, the conflicts with [Conntrack], and every way
reading it can go wrong (never a failure of verify, never a traceback)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from conftest import Commands, context, fake_live, family, write
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from nftune import sysctl
from nftune.errors import NftuneError
from nftune.kubeproxy import writer_of
from nftune.kubeproxy.discover import AT_SECURE, pids, read, survey
from nftune.kubeproxy.model import Gone, KubeProxy, Settings, Untrusted
from nftune.kubeproxy.parse import MAX_CONFIG, duration, flag, parse_document, settings
from nftune.root import Root

IPTABLES = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clusterCIDR: 10.244.0.0/16
mode: ""
conntrack:
  maxPerCore: null
  min: null
  tcpEstablishedTimeout: 24h0m0s
  tcpCloseWaitTimeout: 1h0m0s
"""
IPVS = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  scheduler: rr
  strictARP: true
conntrack:
  maxPerCore: 65536
  min: 262144
  tcpBeLiberal: false
  udpTimeout: 0s
"""
NFTABLES = """\
{"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
 "mode": "nftables", "conntrack": {"maxPerCore": 0, "tcpBeLiberal": true}}
"""
CONFIG = "/var/lib/kube-proxy/config.conf"
LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
LIBERAL_PATH = "net/netfilter/nf_conntrack_tcp_be_liberal"
K8S_CONF = "/etc/sysctl.d/90-k8s.conf"
HOST_NS = ("net:[4026531840]", "user:[4026531837]")  # PID 1's, as procfs names them
ALL_CAPS = "000001ffffffffff"


def namespaces(tree: Path, pid: int, net: str, user: str) -> None:
    (tree / f"proc/{pid}/ns").mkdir(parents=True, exist_ok=True)
    (tree / f"proc/{pid}/ns/net").symlink_to(net)  # procfs's links, dangling here
    (tree / f"proc/{pid}/ns/user").symlink_to(user)


def kube_proxy(tree: Path, pid: int = 4242, *, config: str | None = IPVS,
               argv: tuple[str, ...] = ("--config=" + CONFIG,), cpus: str = "0-3",
               cap_eff: str = ALL_CAPS, state: str = "S (sleeping)",
               net: str = HOST_NS[0], user: str = HOST_NS[1], secure: int = 0,
               flags: int = 0x400100) -> None:
    """A kube-proxy process in a fake /proc, its root a container's directory; by default
    one that could be kube-proxy (the host's namespaces, every capability, not made
    privileged by a setuid program)."""
    write(tree, f"/proc/{pid}/comm", "kube-proxy\n")
    write(tree, f"/proc/{pid}/cmdline", "\0".join(["/usr/local/bin/kube-proxy", *argv]) + "\0")
    write(tree, f"/proc/{pid}/status", f"Name:\tkube-proxy\nState:\t{state}\n"
          f"CapEff:\t{cap_eff}\nCpus_allowed_list:\t{cpus}\n")
    write(tree, f"/proc/{pid}/stat", f"{pid} (kube-proxy) S 1 {pid} {pid} 0 -1 {flags} 0 0\n")
    (tree / f"proc/{pid}/auxv").write_bytes(
        struct.pack("@8L", 6, 4096, AT_SECURE, secure, 25, 1, 0, 0))
    namespaces(tree, pid, net, user)
    container = tree / f"containers/{pid}"
    container.mkdir(parents=True)
    (tree / f"proc/{pid}/root").symlink_to(f"/containers/{pid}")
    (tree / f"proc/{pid}/cwd").symlink_to(f"/containers/{pid}")
    if config is not None:
        write(container, CONFIG, config)


@pytest.fixture
def node(tree: Path) -> Root:
    write(tree, "/proc/1/comm", "systemd\n")
    namespaces(tree, 1, *HOST_NS)
    write(tree, "/proc/self/comm", "kube-proxy\n")  # not a PID: never looked at
    write(tree, K8S_CONF, f"{LIBERAL} = 1\n")  # be_liberal from boot, as nftune makes it
    return fake_live(tree, values={"net/netfilter/nf_conntrack_max": "131072",
                                   LIBERAL_PATH: "1"})


def test_each_mode_from_its_config_file(node: Root, tree: Path) -> None:
    kube_proxy(tree, 10, config=IPTABLES)
    kube_proxy(tree, 11, config=IPVS, cpus="0-7")
    kube_proxy(tree, 12, config=NFTABLES)
    assert pids(node) == [10, 11, 12]
    got = [read(node, p, HOST_NS) for p in (10, 11, 12)]
    timeouts = (("net/netfilter/nf_conntrack_tcp_timeout_established", 86400),
                ("net/netfilter/nf_conntrack_tcp_timeout_close_wait", 3600))
    assert got[0] == KubeProxy(10, CONFIG, Settings("iptables", 32768, 131072, False,
                                                    timeouts), 4)
    assert (got[0].sets_max, got[0].hashsize_floor) == (131072, 32768)
    assert got[1] == KubeProxy(11, CONFIG, Settings("ipvs", 65536, 262144, False,
                                                    timeouts), 8)
    assert got[1].sets_max == 524288
    assert (got[2].mode, got[2].sets_max, got[2].settings.be_liberal) == \
        ("nftables", None, True)


def test_flags_decide_without_a_config_file(node: Root, tree: Path) -> None:
    kube_proxy(tree, config=None, argv=("--proxy-mode", "ipvs", "--conntrack-max-per-core=0",
                                        "--conntrack-tcp-be-liberal", "--v=2"))
    kp = read(node, 4242, HOST_NS)
    assert (kp.mode, kp.source, kp.sets_max, kp.settings.be_liberal) == \
        ("ipvs", "flags", None, True)
    assert flag(["--config", "a", "--config=b"], "config") == "b"


@pytest.mark.parametrize(("text", "seconds"), [
    ("24h0m0s", 86400), ("1h", 3600), ("90s", 90), ("1.5m", 90), ("300ms", 0), ("0", 0),
    ("2h45m", 9900), ("", None), ("1d", None), ("-1h", None), ("h", None), ("1h-", None)])
def test_go_durations(text: str, seconds: int | None) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("argv", [("--conntrack-tcp-be-liberal=yes",),
                                  ("--conntrack-max-per-core", "-1"),
                                  ("--conntrack-min=1e9",), ("--proxy-mode=userspace",),
                                  ("--conntrack-tcp-timeout-established=1d",)])
def test_bad_flags_are_named(node: Root, tree: Path, argv: tuple[str, ...]) -> None:
    kube_proxy(tree, config=None, argv=argv)
    with pytest.raises(NftuneError) as e:
        read(node, 4242, HOST_NS)
    assert argv[0].split("=")[0] in str(e.value)


def test_flags_as_pflag_reads_them(node: Root, tree: Path) -> None:
    kube_proxy(tree, config=None, argv=("--conntrack-max-per-core=0x8000", "--conntrack-min",
                                        "010", "--conntrack-tcp-be-liberal=False",
                                        "--conntrack-udp-timeout=30s"))
    s = read(node, 4242, HOST_NS).settings
    assert (s.max_per_core, s.minimum, s.be_liberal) == (32768, 8, False)
    assert ("net/netfilter/nf_conntrack_udp_timeout", 30) in s.timeouts


def test_with_a_config_file_the_flags_are_ignored(node: Root, tree: Path) -> None:
    kube_proxy(tree, argv=("--conntrack-max-per-core=0", "--config", CONFIG))
    assert read(node, 4242, HOST_NS).settings.max_per_core == 65536


@pytest.mark.parametrize(("text", "words"), [
    ("kind: KubeProxyConfiguration\nconntrack: [\n", "not valid YAML (line 3, column 1)"),
    ("kind: KubeletConfiguration\n", "not KubeProxyConfiguration"),
    ("- a list\n", "not a mapping"),
    ("kind: KubeProxyConfiguration\nmode: userspace\n", "mode is not iptables, ipvs or"),
    ("kind: KubeProxyConfiguration\nconntrack:\n  maxPerCore: lots\n", "maxPerCore"),
    ("kind: KubeProxyConfiguration\nconntrack:\n  min: -1\n", "conntrack.min"),
    ("kind: KubeProxyConfiguration\nconntrack:\n  tcpBeLiberal: maybe\n", "tcpBeLiberal"),
    ("kind: KubeProxyConfiguration\nconntrack: 5\n", "not a mapping"),
    ("kind: !!python/object/apply:os.system ['true']\n", "a tag or value nftune does not"),
    ("kind: KubeProxyConfiguration\nx: " + "[" * 17 + "]" * 17 + "\n", "nested more than 16"),
    ("kind: KubeProxyConfiguration\nx: !!int ''\n", "a value nftune does not accept"),
    ("kind: KubeProxyConfiguration\nx: !!float ''\n", "a value nftune does not accept"),
    ("kind: KubeProxyConfiguration\nx: !!bool maybe\n", "a value nftune does not accept"),
])
def test_bad_documents_name_the_file(text: str, words: str) -> None:
    with pytest.raises(NftuneError) as e:
        settings(parse_document(text.encode(), "FILE"), "FILE")
    assert e.value.path == "FILE" and words in str(e.value)


def test_alias_bombs_cost_nothing() -> None:
    bomb = "kind: KubeProxyConfiguration\na: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 30):
        prev = "a" if i == 1 else f"b{i - 1}"
        bomb += f"b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    assert parse_document(bomb.encode(), "FILE")["kind"] == "KubeProxyConfiguration"


def results(root: Root, text: str = "") -> list[tuple[str, str, str, str]]:
    write(root.path, "/etc/nftune/nftune.conf", text)
    return [(r.subject, r.status, r.cause, r.reason) for r in family(context(root), "kubeproxy")]


def test_informational_without_a_conflict(node: Root, tree: Path) -> None:
    assert results(node) == [("kube-proxy", "skipped", "not-applicable",
                              "no kube-proxy process runs on this node")]
    kube_proxy(tree)
    [(subject, status, cause, reason)] = results(node)
    assert (subject, status, cause) == ("kube-proxy[4242]", "passed", "ok")
    assert "mode ipvs" in reason and f"{K8S_CONF}:1, before kube-proxy starts" in reason


NFTABLES_STRICT = NFTABLES.replace('"tcpBeLiberal": true', '"tcpBeLiberal": false')
IPTABLES_LIBERAL = IPTABLES + "  tcpBeLiberal: true\n"


@pytest.mark.parametrize("config, live, boot, status, words", [
    # IPVS and nftables modes: be_liberal is the only mitigation there is.
    (IPVS, "0", False, "failed", "is 0 and kube-proxy installs no INVALID drop rule in IPVS"),
    (IPVS, "1", True, "passed", f"{K8S_CONF}:1, before kube-proxy starts): INVALID"),
    (IPVS, "1", False, "failed", "by hand or by another agent, until the next boot only"),
    (IPVS, None, False, "failed", "is unreadable and kube-proxy installs no INVALID"),
    (NFTABLES_STRICT, "0", False, "failed", "1.30 and later install no INVALID drop rule in "
                                            "nftables mode (kubernetes PR #122663"),
    (NFTABLES, "1", False, "passed", "written by kube-proxy's tcpBeLiberal at its start"),
    # iptables mode: its own drop rule when be_liberal was 0 at its start.
    (IPTABLES, "0", False, "passed", "so kube-proxy's INVALID drop rule is in force (every "
                                     "version installs it when the value is 0 at its start)"),
    (IPTABLES, "1", True, "passed", "1.29 and later skip their INVALID drop rule when it was "
                                    "1 at their start, older ones install it too (its version "
                                    "is not known to nftune)"),
    (IPTABLES, "1", False, "passed", "by hand or by another agent, until the next boot"),
    (IPTABLES, "0", True, "failed", f"{K8S_CONF}:1 sets 1 at boot, so kube-proxy 1.29 and "
                                    "later found 1 at their start unless the line was lost"),
    (IPTABLES_LIBERAL, "0", False, "failed", "tcpBeLiberal wrote 1 at its start, and so "
                                             "installed no INVALID drop rule"),
])
def test_each_mode_names_what_keeps_invalid_segments_from_resetting(
        tree: Path, config: str, live: str | None, boot: bool, status: str,
        words: str) -> None:
    write(tree, "/proc/1/comm", "systemd\n")
    namespaces(tree, 1, *HOST_NS)
    if boot:
        write(tree, K8S_CONF, f"{LIBERAL}=1\n")
    values = {} if live is None else {LIBERAL_PATH: live}
    node = fake_live(tree, values=values)
    kube_proxy(tree, config=config)
    [r] = family(context(node), "kubeproxy")
    assert r.status == status, r.reason
    assert words in r.reason, r.reason
    if status == "failed":
        assert r.cause == "invalid-unhandled"
        later = live == "0" and (boot or "tcpBeLiberal: true" in config)
        assert r.hint and ("back to 0 after kube-proxy started" if later
                           else "conntrack.tcpBeLiberal: true") in r.hint, r.hint


@pytest.mark.parametrize("line", [f"{LIBERAL} = 1", "net.netfilter.nf_conntrack_tcp_be_* = 1"])
@pytest.mark.parametrize("node_view", ["fail", "no", "past its bounds"])
def test_an_admin_s_own_boot_line_counts_when_nftune_leaves_be_liberal_alone(
        tree: Path, line: str, node_view: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key's own line or a glob, read from the node-wide view, on its own, or on its
    own again when the node-wide view was cut."""
    if node_view == "past its bounds":
        node_view = "fail"
        monkeypatch.setattr(sysctl, "MAX_NODE_KEYS", 1)
        monkeypatch.setattr(sysctl, "MAX_NODE_GLOBS", 0)
        write(tree, "/etc/sysctl.d/00-first.conf", "kernel.pid_max = 4194304\n")
    write(tree, "/proc/1/comm", "systemd\n")
    namespaces(tree, 1, *HOST_NS)
    write(tree, K8S_CONF, f"{line}\n")
    write(tree, "/etc/nftune/nftune.conf",
          f"[Sysctl]\n{LIBERAL} =\n[Verify]\nNodeSysctl = {node_view}\n")
    node = fake_live(tree, values={LIBERAL_PATH: "1"})
    kube_proxy(tree, config=IPVS)
    ctx = context(node)
    assert all(s.key != "net/netfilter/nf_conntrack_tcp_be_liberal" for s in ctx.config.sysctls)
    [r] = family(ctx, "kubeproxy")
    assert r.status == "passed" and f"{K8S_CONF}:1, before kube-proxy starts" in r.reason


def test_a_contested_max_names_the_setting_to_change(node: Root, tree: Path) -> None:
    kube_proxy(tree)
    write(tree, "/etc/nftune/nftune.conf", "[Conntrack]\nMax=200000\nBuckets=auto\n")
    [r] = family(context(node), "kubeproxy")
    assert (r.status, r.cause) == ("failed", "kube-proxy-conflict")
    assert "sets nf_conntrack_max to 262144, nftune wants 200000" in r.reason
    assert "raises hashsize to 65536, above nftune's 50176" in r.reason
    assert r.hint and "conntrack.maxPerCore: 0 in /var/lib/kube-proxy/config.conf" in r.hint
    # maxPerCore 0 leaves the table to nftune; tcpBeLiberal agrees with be_liberal=1.
    write(tree / "containers/4242", CONFIG, NFTABLES)
    [(_, status, _, reason)] = results(node, "[Conntrack]\nMax=200000\n")
    assert status == "passed" and f"{K8S_CONF}:1, before kube-proxy starts" in reason
    [(_, status, cause, reason)] = results(
        node, "[Conntrack]\nMax=200000\n[Sysctl]\nnet.netfilter.nf_conntrack_tcp_be_liberal=0\n")
    assert (status, cause) == ("failed", "kube-proxy-conflict") and "tcpBeLiberal" in reason


def test_auto_agrees_with_kube_proxy_by_construction(node: Root, tree: Path) -> None:
    kube_proxy(tree, config=IPTABLES)
    from conftest import add_cpus

    add_cpus(tree, "0-3")
    write(tree, "/proc/meminfo", "MemTotal: 16777216 kB\n")
    [(_, status, _, _)] = results(node, "[Conntrack]\nMax=auto\nBuckets=auto\n")
    assert status == "passed"


@pytest.mark.parametrize("case", ["fifo", "escape", "huge", "gone", "directory", "root-gone",
                                  "reused", "relative"])
def test_hostile_or_vanishing_processes_are_skipped(node: Root, tree: Path, case: str,
                                                     commands: Commands) -> None:
    kube_proxy(tree)
    config = tree / "containers/4242" / CONFIG.lstrip("/")
    config.unlink()
    if case == "fifo":
        os.mkfifo(config)
    elif case == "escape":  # outside its root: resolved inside it, so not found
        write(tree, "/etc/secret.conf", IPVS)
        config.symlink_to("../../../../../../etc/secret.conf")
    elif case == "huge":
        config.write_text("kind: KubeProxyConfiguration\n" + "#" * (2 << 20))
    elif case == "gone":
        (tree / "proc/4242/cmdline").unlink()
        (tree / "proc/4242/status").unlink()
    elif case == "directory":
        config.mkdir()
    elif case == "reused":  # its PID now another process's, between listing and reading
        write(tree, "/proc/4242/comm", "kubelet\n")
        with pytest.raises(Gone):
            read(node, 4242, HOST_NS)
        return
    elif case == "relative":
        write(tree, "/proc/4242/cmdline", "kube-proxy\0--config=config.conf\0")
    else:
        (tree / "proc/4242/root").unlink()
    [(subject, status, cause, reason)] = results(node, "[Conntrack]\nMax=200000\n")
    vanished = case in ("gone", "root-gone")  # procfs: no entry once the process is gone
    if vanished:
        assert (subject, status, cause) == ("kube-proxy", "skipped", "untrusted"), reason
        assert reason.endswith("exited: 1 (PID 4242)"), reason
    else:
        assert (subject, status, cause) == ("kube-proxy[4242]", "skipped", "unreadable")
        assert "config.conf" in reason
    with pytest.raises((Gone, NftuneError)):
        read(node, 4242, HOST_NS)


def test_offline_it_is_skipped(tree: Path) -> None:
    from nftune.verify import verify

    kube_proxy(tree)
    [r] = [r for r in verify(context(Root(tree))).results if r.check == "kube-proxy"]
    assert (r.status, r.cause) == ("skipped", "not-live")


def test_values_from_the_document_are_never_printed_whole() -> None:
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    for tail in ("kind: *a9\n", "kind: KubeProxyConfiguration\nmode: *a9\n",
                 "kind: KubeProxyConfiguration\nconntrack: {maxPerCore: *a9}\n",
                 "kind: KubeProxyConfiguration\nconntrack: {tcpEstablishedTimeout: *a9}\n",
                 "kind: KubeProxyConfiguration\nconntrack: {maxPerCore: "
                 + "[" * 990 + "]" * 990 + "}\n"):
        with pytest.raises(NftuneError) as e:
            settings(parse_document((bomb + tail).encode(), "FILE"), "FILE")
        assert len(str(e.value)) < 300


def test_a_test_trees_links_cannot_lead_out(node: Root, tree: Path) -> None:
    """A symlink loop makes chase() give up: the root is still opened inside the tree."""
    kube_proxy(tree)
    (tree / "proc/4242/root").unlink()
    (tree / "tmp").symlink_to("/tmp")
    (tree / "proc/4242/root").symlink_to("/tmp/../../../../etc")
    write(tree, "/etc/var/lib/kube-proxy/config.conf", NFTABLES)  # what the tree says
    [(_, status, cause, reason)] = results(node, "[Conntrack]\nMax=200000\n")
    # Resolved inside the tree, /tmp is a loop: no root, and nothing of the host's read.
    assert (status, cause) == ("skipped", "unreadable"), reason
    assert "cannot open its root: Too many levels of symbolic links" in reason
    (tree / "tmp").unlink()
    (tree / "tmp").mkdir()  # now /tmp/../../../../etc is the tree's own /etc
    [(_, status, cause, reason)] = results(node, "[Conntrack]\nMax=200000\n")
    assert (status, cause, "mode nftables" in reason) == ("passed", "ok", True), reason


def test_the_cap_is_named_where_it_matters(node: Root, tree: Path) -> None:
    kube_proxy(tree, config=IPTABLES, cpus="0-63")
    [(_, status, _, reason)] = results(node)
    assert status == "passed" and "before kube-proxy 1.36 (no cap at 1048576): 2097152" in reason


def test_sysctl_section_values_are_contested_too(node: Root, tree: Path) -> None:
    kube_proxy(tree, config=IPTABLES)
    [(_, status, cause, reason)] = results(
        node, "[Sysctl]\nnet.netfilter.nf_conntrack_max=65536\n"
              "net.netfilter.nf_conntrack_tcp_timeout_established=600\n")
    assert (status, cause) == ("failed", "kube-proxy-conflict")
    assert "nf_conntrack_max to 131072, nftune wants 65536" in reason
    assert "nf_conntrack_tcp_timeout_established to 86400, nftune wants 600" in reason


# -- the trust rule: only a process that could itself write what it claims is read ------

SECRET = "k10secretTOKENvalue-abcdef"


def test_only_a_process_that_could_be_kube_proxy_is_read(node: Root, tree: Path) -> None:
    """Decoys of every kind, with lower PIDs than the real one: none is read, one line
    says how many and why, and the real one's conflict still fails the check."""
    write(tree, "/root/secret", SECRET + "\n")
    decoy = ("--config=/root/secret", "--conntrack-max-per-core=1")
    for pid in range(100, 130):  # unprivileged: no CAP_NET_ADMIN (CapEff of a user)
        kube_proxy(tree, pid, config=None, argv=decoy, cap_eff="0000000000000000")
    for pid in range(130, 134):  # a pod's own network namespace
        kube_proxy(tree, pid, config=None, argv=decoy, net="net:[4026532999]")
    for pid in range(134, 136):  # a user namespace (rootless containers): caps of its own
        kube_proxy(tree, pid, config=None, argv=decoy, user="user:[4026532111]")
    for pid in range(136, 140):  # zombies
        kube_proxy(tree, pid, config=None, argv=decoy, state="Z (zombie)")
    kube_proxy(tree, 140, config=None, argv=decoy)
    (tree / "proc/140/ns/net").unlink()  # its namespaces cannot be read (no ptrace rights)
    # A setuid-root program started by a user under the name kube-proxy (a link named so):
    # root's capabilities, the host's namespaces, but the user's argv.
    kube_proxy(tree, 141, config=None, argv=decoy, secure=1)
    kube_proxy(tree, 142, config=None, argv=decoy, flags=0x208040)  # a kernel thread
    kube_proxy(tree, 900)  # the real one: host namespaces, CAP_NET_ADMIN
    got = survey(node)
    assert [kp.pid for kp in got.found] == [900]
    assert dict(got.ignored) == {
        "exited": tuple(range(136, 140)), "a kernel thread": (142,),
        "namespaces unreadable": (140,),
        "another user namespace than PID 1's": (134, 135),
        "another network namespace than PID 1's": tuple(range(130, 134)),
        "no CAP_NET_ADMIN": tuple(range(100, 130)),
        "privileged by a setuid or file-capability program (AT_SECURE)": (141,)}
    rows = results(node, "[Conntrack]\nMax=200000\n")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("kube-proxy[900]", "failed", "kube-proxy-conflict"),
        ("kube-proxy", "skipped", "untrusted")]
    assert rows[1][3] == (
        "43 processes named kube-proxy ignored, as none could itself write what it would "
        "claim: exited: 4 (PIDs 136, 137, 138, 139); a kernel thread: 1 (PID 142); "
        "namespaces unreadable: 1 (PID 140); another user namespace than PID 1's: 2 (PIDs "
        "134, 135); another network namespace than PID 1's: 4 (PIDs 130, 131, 132, 133); "
        "no CAP_NET_ADMIN: 30 (PIDs 100, 101, 102, 103, 104, …); privileged by a setuid or "
        "file-capability program (AT_SECURE): 1 (PID 141)")
    assert SECRET not in repr(rows)
    # Without the real one, decoys alone change nothing: no conflict, no failure.
    import shutil

    shutil.rmtree(tree / "proc/900")
    node_ctx = context(node)
    assert not any(r.failed for r in family(node_ctx, "kubeproxy"))
    assert writer_of(node_ctx, "net/netfilter/nf_conntrack_max") is None


@pytest.mark.parametrize(("cap_eff", "trusted"), [
    ("0000000000001000", True), ("0000000000000fff", False), ("0000000000002000", False),
    ("000001ffffffefff", False), ("nonsense", False)])
def test_cap_net_admin_is_bit_12_of_capeff(node: Root, tree: Path, cap_eff: str,
                                           trusted: bool) -> None:
    kube_proxy(tree, cap_eff=cap_eff)
    if trusted:
        assert read(node, 4242, HOST_NS).mode == "ipvs"
    else:
        with pytest.raises(Untrusted):
            read(node, 4242, HOST_NS)


def test_without_pid_1s_namespaces_nothing_is_trusted(node: Root, tree: Path) -> None:
    kube_proxy(tree)
    (tree / "proc/1/ns/user").unlink()
    assert dict(survey(node).ignored) == {"namespaces unreadable": (4242,)}


@pytest.mark.parametrize("doc", [
    SECRET, f"- {SECRET}", f"kind: {SECRET}", f"{SECRET}: [", f"kind: !{SECRET} x",
    f"kind: !!python/name:{SECRET} x", f"kind: KubeProxyConfiguration\nmode: {SECRET}",
    f"kind: KubeProxyConfiguration\nconntrack: {SECRET}",
    f"kind: KubeProxyConfiguration\nconntrack: {{maxPerCore: {SECRET}}}",
    f"kind: KubeProxyConfiguration\nconntrack: {{tcpBeLiberal: {SECRET}}}",
    f"kind: KubeProxyConfiguration\nconntrack: {{udpTimeout: {SECRET}}}",
    f"kind: KubeProxyConfiguration\nx: !!int {SECRET}", f"x: !!timestamp {SECRET}",
    f"x: !!binary {SECRET}!", f"x: *{SECRET}", f"x: &{SECRET} [", f'x: "{SECRET}\\q"',
    f"{SECRET}\t: x", f"x: '{SECRET}", f"%TAG !{SECRET}! tag:x\n---\nx", f"%{SECRET} x\n---",
    f"x: !!set {{{SECRET}: 1}}", f"? [{SECRET}]\n: x", f"x: {SECRET}\x07"])
def test_no_byte_of_the_document_reaches_a_message(doc: str) -> None:
    with pytest.raises(NftuneError) as e:
        settings(parse_document(doc.encode(), "FILE"), "FILE")
    text = f"{e.value} {e.value.hint} {e.value.key} {e.value.value}"
    assert SECRET not in text and SECRET[:8] not in text, text


def test_a_file_that_is_not_text_names_no_byte(node: Root) -> None:
    with pytest.raises(NftuneError) as e:
        parse_document(b"kind: KubeProxyConfiguration\nmode: \xff\xfe" + SECRET.encode(),
                       "FILE")
    assert "not text YAML allows" in str(e.value) and SECRET not in str(e.value)


def test_the_size_cap_is_a_clean_skip(node: Root, tree: Path) -> None:
    kube_proxy(tree, config="kind: KubeProxyConfiguration\n" + "#" * MAX_CONFIG)
    [(_, status, cause, reason)] = results(node)
    assert (status, cause) == ("skipped", "unreadable")
    assert f"larger than {MAX_CONFIG} bytes" in reason


def test_only_file_systems_that_store_files(tree: Path) -> None:
    """The host's procfs and sysfs are not; this tree's file system is. (The fake
    processes' roots are directories of the tree: the suite in test_packages.py reaches
    tracefs and procfs through real processes' roots.)"""
    from nftune.chase import on_storage_fs

    write(tree, "/f", "x")
    for path, storage in ((tree / "f", True), ("/proc/self/status", False),
                          ("/sys/kernel/mm/transparent_hugepage/enabled", False)):
        if not os.path.exists(path):
            continue
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert on_storage_fs(fd) is storage, path
        finally:
            os.close(fd)


# -- the loader on random YAML: whatever a file holds, verify goes on --------------------

TAGS = ["", "!!null ", "!!bool ", "!!int ", "!!float ", "!!binary ", "!!timestamp ",
        "!!omap ", "!!pairs ", "!!set ", "!!str ", "!!seq ", "!!map ", "!!merge ",
        "!!value ", "!!yaml ", "!!python/object:os.system ", "!!python/name:os.system ",
        "!local ", "!<tag:yaml.org,2002:int> ", "!<tag:x> "]
SCALARS = ["", "0", "-1", "0x1f", "0o7", "1_000", "1e999", ".inf", ".nan", "~", "null",
           "maybe", "yes", "off", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "24h0m0s",
           "1d", "'x'", '"\\x41\\U0001F600"', "ipvs", "nftables", "KubeProxyConfiguration",
           "QUFB", "<<", "=", "2147483648", "true", "65536"]
# What breaks the syntax itself: rarer, so most documents reach the constructor.
BREAKING = ["-", "?", ":", "\"unterminated", "*undefined", "|\n  block", "[", "}"]
KEYS = ["kind", "mode", "conntrack", "maxPerCore", "min", "tcpBeLiberal",
        "tcpEstablishedTimeout", "udpTimeout", "<<", "x", "? [a]", "&a k", "*a"]


def _yaml(draw: st.DrawFn, depth: int, anchors: list[str]) -> str:
    """A node: a scalar, an alias (of an anchor made earlier, now and then of none), a
    sequence or a mapping, with a tag and an anchor of its own at random."""
    kind = draw(st.integers(0, 4 if depth < 3 else 1))
    tag = draw(st.sampled_from(TAGS))
    anchor = ""
    if draw(st.sampled_from([False] * 3 + [True])):
        anchor = f"&a{len(anchors)} "
        anchors.append(f"a{len(anchors)}")
    if kind == 2 and anchors:
        return "*" + draw(st.sampled_from([*anchors] * 8 + ["undefined"]))
    if kind <= 2:
        return anchor + tag + draw(st.sampled_from(SCALARS * 16 + BREAKING))
    items = [_yaml(draw, depth + 1, anchors) for _ in range(draw(st.integers(0, 4)))]
    if kind == 3:
        return anchor + tag + "[" + ", ".join(items) + "]"
    keys = [draw(st.sampled_from(KEYS[:10] * 12 + KEYS[10:])) for _ in items]
    pairs = (f"{k}: {v}" for k, v in zip(keys, items, strict=True))
    return anchor + tag + "{" + ", ".join(pairs) + "}"


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines = []
    anchors: list[str] = []
    if draw(st.sampled_from([True] * 3 + [False])):
        lines.append("kind: KubeProxyConfiguration")
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(KEYS[:10]))
        lines.append(f"{key}: {_yaml(draw, 0, anchors)}")
    if draw(st.booleans()):
        lines.append("conntrack:")
        lines += [f"  {draw(st.sampled_from(KEYS[:10]))}: {_yaml(draw, 1, anchors)}"
                  for _ in range(draw(st.integers(0, 3)))]
    text = "\n".join(lines) + "\n"
    if draw(st.sampled_from([False] * 7 + [True])):  # and the odd byte anywhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["\t", "\x00", "\ufeff", "%", "---\n",
                                                 "\x85", "'", "\"", "#", "!"])) + text[at:]
    return text


@hypothesis_settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=documents())
def test_no_exception_escapes_verify_whatever_the_file_says(node: Root, tree: Path,
                                                            doc: str) -> None:
    from nftune.verify import verify

    if not (tree / "proc/4242").exists():
        kube_proxy(tree)
    write(tree / "containers/4242", CONFIG, doc)
    ctx = context(node)
    [r] = [r for r in verify(ctx).results if r.check == "kube-proxy"]
    assert r.subject == "kube-proxy[4242]" and r.status in ("passed", "skipped", "failed")


def test_no_line_can_be_forged(node: Root, tree: Path, capsys: pytest.CaptureFixture[str],
                               commands: Commands) -> None:
    """A --config path (a trusted kube-proxy's, the one thing of a process nftune repeats)
    with a newline and an escape: every output line is one of nftune's, on stdout and
    stderr, in text and in the hint line."""
    from nftune.cli import main

    forged = "/etc/kp\nfailed: FORGED\x1b[2J\u2028x.conf"
    kube_proxy(tree, argv=(f"--config={forged}",), config=None)
    write(tree / "containers/4242", forged, IPVS)
    write(tree, "/etc/nftune/nftune.conf", "[Conntrack]\nMax=200000\n")
    assert main(["verify", "--check", "kube-proxy"], host=node, runner=commands) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines() + out.err.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["failed:", "", "verify:"], lines
    assert lines[1].startswith("    hint: ") and "\\nfailed: FORGED\\x1b[2J\\u2028x" in lines[1]
    assert "\x1b" not in out.out + out.err and "\u2028" not in out.out


def test_the_readmes_ignored_line(node: Root, tree: Path) -> None:
    """The example in the README's "kube-proxy, seen" is what nftune prints."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [shown] = re.findall(r"^    (skipped: kube-proxy kube-proxy \[untrusted\]: .*)$", readme,
                         re.M)
    kube_proxy(tree, 912, state="Z (zombie)")
    kube_proxy(tree, 977, cap_eff="0000000000000000")
    kube_proxy(tree, 978, cap_eff="0000000000000000")
    [r] = family(context(node), "kubeproxy")
    assert r.line() == shown
