"""kube-proxy seen from the node: KubeProxyConfiguration in each mode (fixtures written by
hand from the fields the upstream type documents: kubeproxy.config.k8s.io/v1alpha1), its
flags, what it writes at its next start, the conflicts with [Conntrack], and every way
reading it can go wrong (never a failure of verify, never a traceback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Commands, context, fake_live, write

from nftune.checks import kubeproxy as check
from nftune.errors import NftuneError
from nftune.kubeproxy import (
    Gone,
    KubeProxy,
    Settings,
    duration,
    flag,
    parse_document,
    pids,
    read,
    settings,
)
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


def kube_proxy(tree: Path, pid: int = 4242, *, config: str | None = IPVS,
               argv: tuple[str, ...] = ("--config=" + CONFIG,), cpus: str = "0-3") -> None:
    """A kube-proxy process in a fake /proc, its root a container's directory."""
    write(tree, f"/proc/{pid}/comm", "kube-proxy\n")
    write(tree, f"/proc/{pid}/cmdline", "\0".join(["/usr/local/bin/kube-proxy", *argv]) + "\0")
    write(tree, f"/proc/{pid}/status", f"Name:\tkube-proxy\nCpus_allowed_list:\t{cpus}\n")
    container = tree / f"containers/{pid}"
    container.mkdir(parents=True)
    (tree / f"proc/{pid}/root").symlink_to(f"/containers/{pid}")
    (tree / f"proc/{pid}/cwd").symlink_to(f"/containers/{pid}")
    if config is not None:
        write(container, CONFIG, config)


@pytest.fixture
def node(tree: Path) -> Root:
    write(tree, "/proc/1/comm", "systemd\n")
    write(tree, "/proc/self/comm", "kube-proxy\n")  # not a PID: never looked at
    return fake_live(tree, values={"net/netfilter/nf_conntrack_max": "131072"})


def test_each_mode_from_its_config_file(node: Root, tree: Path) -> None:
    kube_proxy(tree, 10, config=IPTABLES)
    kube_proxy(tree, 11, config=IPVS, cpus="0-7")
    kube_proxy(tree, 12, config=NFTABLES)
    assert pids(node) == [10, 11, 12]
    got = [read(node, p) for p in (10, 11, 12)]
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
    kp = read(node, 4242)
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
        read(node, 4242)
    assert argv[0].split("=")[0] in str(e.value)


def test_flags_as_pflag_reads_them(node: Root, tree: Path) -> None:
    kube_proxy(tree, config=None, argv=("--conntrack-max-per-core=0x8000", "--conntrack-min",
                                        "010", "--conntrack-tcp-be-liberal=False",
                                        "--conntrack-udp-timeout=30s"))
    s = read(node, 4242).settings
    assert (s.max_per_core, s.minimum, s.be_liberal) == (32768, 8, False)
    assert ("net/netfilter/nf_conntrack_udp_timeout", 30) in s.timeouts


def test_with_a_config_file_the_flags_are_ignored(node: Root, tree: Path) -> None:
    kube_proxy(tree, argv=("--conntrack-max-per-core=0", "--config", CONFIG))
    assert read(node, 4242).settings.max_per_core == 65536


@pytest.mark.parametrize(("text", "words"), [
    ("kind: KubeProxyConfiguration\nconntrack: [\n", "not YAML"),
    ("kind: KubeletConfiguration\n", "not KubeProxyConfiguration"),
    ("- a list\n", "not a mapping"),
    ("kind: KubeProxyConfiguration\nmode: userspace\n", "unknown mode"),
    ("kind: KubeProxyConfiguration\nconntrack:\n  maxPerCore: lots\n", "maxPerCore"),
    ("kind: KubeProxyConfiguration\nconntrack:\n  min: -1\n", "conntrack.min"),
    ("kind: KubeProxyConfiguration\nconntrack:\n  tcpBeLiberal: maybe\n", "tcpBeLiberal"),
    ("kind: KubeProxyConfiguration\nconntrack: 5\n", "not a mapping"),
    ("kind: !!python/object/apply:os.system ['true']\n", "not YAML"),
    ("kind: KubeProxyConfiguration\nx: " + "[" * 5000 + "]" * 5000 + "\n", ""),
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
    return [(r.subject, r.status, r.cause, r.reason) for r in check.checks(context(root))]


def test_informational_without_a_conflict(node: Root, tree: Path) -> None:
    assert results(node) == [("kube-proxy", "skipped", "not-applicable",
                              "no kube-proxy process runs on this node")]
    kube_proxy(tree)
    [(subject, status, cause, reason)] = results(node)
    assert (subject, status, cause) == ("kube-proxy[4242]", "passed", "ok")
    assert "mode ipvs" in reason and "IPVS mode never drops INVALID" in reason


def test_a_contested_max_names_the_setting_to_change(node: Root, tree: Path) -> None:
    kube_proxy(tree)
    write(tree, "/etc/nftune/nftune.conf", "[Conntrack]\nMax=200000\nBuckets=auto\n")
    [r] = check.checks(context(node))
    assert (r.status, r.cause) == ("failed", "kube-proxy-conflict")
    assert "sets nf_conntrack_max to 262144, nftune wants 200000" in r.reason
    assert "raises hashsize to 65536, above nftune's 50176" in r.reason
    assert r.hint and "conntrack.maxPerCore: 0 in /var/lib/kube-proxy/config.conf" in r.hint
    # maxPerCore 0 leaves the table to nftune; tcpBeLiberal agrees with be_liberal=1.
    write(tree / "containers/4242", CONFIG, NFTABLES)
    [(_, status, _, reason)] = results(node, "[Conntrack]\nMax=200000\n")
    assert status == "passed" and "skips its INVALID drop rule" in reason
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


@pytest.mark.parametrize("case", ["fifo", "escape", "huge", "gone", "directory", "root-gone"])
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
    else:
        (tree / "proc/4242/root").unlink()
    [(subject, status, cause, reason)] = results(node, "[Conntrack]\nMax=200000\n")
    assert (subject, status) == ("kube-proxy[4242]", "skipped"), reason
    vanished = case in ("gone", "root-gone")  # procfs: no entry once the process is gone
    assert cause == ("not-applicable" if vanished else "unreadable"), reason
    if not vanished:
        assert "config.conf" in reason
    with pytest.raises((Gone, NftuneError)):
        read(node, 4242)


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
