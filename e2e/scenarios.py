"""The scenarios: what each boot of a guest asserts from inside. A scenario prepares the
root filesystem on the host (setup), then boots it once per step; each step is a shell
script run in the guest after that boot has settled (helpers: guest/lib.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .vm import BOOT_TIMEOUT, Hardware

RELEASES = ("bullseye", "bookworm", "trixie")
KEY = "net.netfilter.nf_conntrack_tcp_be_liberal"
STATE = "/var/lib/nftune-e2e"


REBOOTS = int(os.environ.get("NFTUNE_E2E_REBOOTS", "3"))  # the reboot loop's length


@dataclass(frozen=True)
class Inputs:
    deb: Path | None
    rpm: Path | None


Setup = Callable[[Path, Inputs], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    steps: tuple[str, ...]
    setup: Setup | None = None
    needs: tuple[str, ...] = field(default=())  # "deb", "rpm"
    releases: tuple[str, ...] = RELEASES
    hardware: Hardware = field(default_factory=Hardware)
    timeout: float = BOOT_TIMEOUT  # a boot, its step included


def _sysctl_d_only(rootfs: Path, _: Inputs) -> None:
    """What an admin does without nftune: a sysctl.d line, nothing more."""
    (rootfs / "etc/sysctl.d/90-local.conf").write_text(f"{KEY} = 1\n")


def install_offline(rootfs: Path, inputs: Inputs) -> None:
    """What an image build does: install into the tree, before it ever boots."""
    assert inputs.deb is not None
    p = subprocess.run(["dpkg", f"--root={rootfs}", "-i", str(inputs.deb)],
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"dpkg --root failed: {p.stdout}{p.stderr}")


BLACKLIST = "etc/modprobe.d/50-hardening.conf"
# Kubernetes' install guide has every kubeadm user write these; br_netfilter makes the
# first, and nothing lists it.
K8S_CONF = "/etc/sysctl.d/k8s.conf"
K8S_SYSCTLS = "net.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.ip_forward = 1\n"
BRIDGE_KEY = "/proc/sys/net/bridge/bridge-nf-call-iptables"
# The measured sysctl data (nftune/sysctldata.py), re-measured on a random sample of its
# modules in the rst boot.
SYSCTL_SAMPLE = int(os.environ.get("NFTUNE_SYSCTL_SAMPLE", "20"))
SYSCTL_SEED = int(os.environ.get("NFTUNE_SYSCTL_SEED", "27"))


def _offline_blacklisted(rootfs: Path, inputs: Inputs) -> None:
    """The offline image, with a hardening file that blacklists nf_conntrack; the image
    pipeline's `verify --root` (the package's own binary, run on the host) is kept for the
    guest to check: it must fail before the image ever boots."""
    install_offline(rootfs, inputs)
    (rootfs / BLACKLIST).write_text("# CIS-style hardening\nblacklist nf_conntrack\n")
    (rootfs / K8S_CONF.lstrip("/")).write_text(K8S_SYSCTLS)
    p = subprocess.run([str(rootfs / "usr/lib/nftune/nftune"), "verify", "--root",
                        str(rootfs)], capture_output=True, text=True, check=False)
    state = rootfs / STATE.lstrip("/")
    (state / "verify-root.txt").write_text(p.stdout + p.stderr)
    (state / "verify-root.rc").write_text(f"{p.returncode}\n")


def _copy_deb(rootfs: Path, inputs: Inputs) -> None:
    assert inputs.deb is not None
    shutil.copy(inputs.deb, rootfs / STATE.lstrip("/") / "nftune.deb")


def _rst(rootfs: Path, inputs: Inputs) -> None:
    """The deb to install in the boot, and a random sample of the modules the shipped
    sysctl data was measured from, for the guest to measure again."""
    import json
    import random

    from nftune.sysctldata import KERNELS, KEYS, MODULES

    _copy_deb(rootfs, inputs)
    [kernel] = [p.name.removeprefix("vmlinuz-") for p in (rootfs / "boot").glob("vmlinuz-*")]
    series = ".".join(kernel.split("-")[0].split(".")[:2])
    i = [name for name, _ in KERNELS].index(series)
    measured = sorted(m for m, how in MODULES.items() if how[i] == "loaded")
    sample = random.Random(SYSCTL_SEED).sample(measured, min(SYSCTL_SAMPLE, len(measured)))
    owner = {key: m for key, cols in KEYS.items() if (m := cols[i])}
    state = rootfs / STATE.lstrip("/")
    (state / "sysctl-owner.json").write_text(json.dumps(owner))
    (state / "sysctl-sample.txt").write_text("\n".join(sample) + "\n")


def _drift(rootfs: Path, inputs: Inputs) -> None:
    install_offline(rootfs, inputs)
    (rootfs / "etc/sysctl.d/99-zz-local.conf").write_text(f"{KEY} = 0\n")


def _agent_cycle(rootfs: Path, inputs: Inputs) -> None:
    """An admin orders modules-load after an agent that runs after sysinit.target: a cycle.
    (With default dependencies the agent also closes cycles through sockets.target, where
    systemd may delete dbus.socket's job instead, and nothing could be asked over D-Bus.)
    The boot requires the agent: systemd breaks the cycle by deleting a job the boot does
    not require, the first it meets in a hashmap's order, random per boot
    (src/core/transaction.c, transaction_verify_order_one); with the agent only wanted, its
    own job could go, and this boot would have no cycle to name (as tests/test_nspawn.py's
    agent)."""
    install_offline(rootfs, inputs)
    unit = rootfs / "etc/systemd/system/some-agent.service"
    unit.write_text("[Unit]\nDescription=an agent\nDefaultDependencies=no\n"
                    "After=sysinit.target\n[Service]\nType=oneshot\nExecStart=/bin/true\n")
    requires = rootfs / "etc/systemd/system/multi-user.target.requires"
    requires.mkdir(parents=True, exist_ok=True)
    (requires / "some-agent.service").symlink_to("/etc/systemd/system/some-agent.service")
    dropin = rootfs / "etc/systemd/system/systemd-modules-load.service.d/50-agent.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text("[Unit]\nAfter=some-agent.service\n")


CYCLE = """
nftune verify > /tmp/verify.txt 2>&1
check verify-exit 1 $?
grep -q '^failed: ordering systemd-sysctl.service \\[ordering-cycle\\]' /tmp/verify.txt
check offline-cycle 0 $?
journalctl -b -p 4 -o cat SYSLOG_IDENTIFIER=systemd | grep 'deleted to break ordering cycle' \
    > /tmp/deleted.txt
check journal-has-the-deletion 0 $?
grep '^failed: boot-graph ' /tmp/verify.txt | grep -qF "this boot: $(head -n1 /tmp/deleted.txt)"
check boot-graph-names-the-line 0 $?
# The job systemd deleted is one of ours (the boot requires the agent): unit-state says so.
job=$(sed -n 's|.*Job \\([^/]*\\)/start deleted.*|\\1|p' /tmp/deleted.txt | head -n1)
case $job in
systemd-modules-load.service|systemd-sysctl.service)
    lost="\\[ordering-cycle\\]: did not run: systemd deleted its job"
    grep -q "^failed: unit-state $job .*$lost" /tmp/verify.txt ;;
*)  false ;;
esac
check unit-state-names-the-deleted-job 0 $?
show chain-exit-1 sh -c 'nftune chain; test $? = 1'
"""


def _sysctl_d_and_deb(rootfs: Path, inputs: Inputs) -> None:
    """No nftune yet, an admin's sysctl.d line, and the .deb to install in the guest."""
    _sysctl_d_only(rootfs, inputs)
    _copy_deb(rootfs, inputs)


def _copy_rpm(rootfs: Path, inputs: Inputs) -> None:
    assert inputs.rpm is not None
    shutil.copy(inputs.rpm, rootfs / STATE.lstrip("/") / "nftune.rpm")


VERIFY_AND_CHAIN = """
show verify-exit nftune verify
show chain-exit nftune chain
check chain-live true "$(nftune chain --json | grep -o '"live": [a-z]*' | cut -d' ' -f2)"
"""

BASELINE = """
check nf_conntrack-at-boot absent "$(loaded)"
check sysctl-could-not-write yes "$(couldnt_write > /dev/null && echo yes || echo no)"
modprobe nf_conntrack
check value-after-late-load 0 "$(liberal)"
"""
# Files with nftune in their name, but the test agent's and dpkg's own database.
LEFTOVERS = f"""
check no-nftune-files "" "$(find / -xdev -name '*nftune*' ! -path '{STATE}*' \\
    ! -path '/usr/local/lib/nftune-e2e*' ! -name 'nftune-e2e.service' \\
    ! -path '/var/lib/dpkg/*' ! -path '/var/log/*' | sort | tr '\\n' ' ')"
"""

# RPS: 4 CPUs, a single-queue NIC and a 2-queue NIC (a multiqueue tap, in a network
# namespace of qemu's own), then a NIC hot-plugged after boot, and virtual devices that
# must get no mask and start no process.
RPS_HARDWARE = Hardware(
    cpus=4,
    nics=(("-netdev", "user,id=n1", "-device", "virtio-net-pci,netdev=n1"),
          ("-netdev", "tap,id=n2,ifname=nftq0,script=no,downscript=no,queues=2,vhost=off",
           "-device", "virtio-net-pci,netdev=n2,mq=on,vectors=6")),
    own_netns=True,
    on_request=(("hotplug", ({"execute": "netdev_add", "arguments": {"type": "user",
                                                                      "id": "hp0"}},
                             {"execute": "device_add",
                              "arguments": {"driver": "virtio-net-pci", "netdev": "hp0",
                                            "id": "hpnic", "bus": "hp"}})),))
RPS = """
# The physical NIC with N receive queues; masks read as values ("00000000,0000000f" = f).
nic_with() {
    for d in /sys/class/net/*; do
        [ -e "$d/device" ] || continue
        [ "$(ls -d "$d"/queues/rx-* | wc -l)" = "$1" ] && basename "$d" && return
    done
}
mask() { tr -d ',\n' < "/sys/class/net/$1/queues/$2/rps_cpus" | sed 's/^0*//; s/^$/0/'; }
flows() { cat "/sys/class/net/$1/queues/$2/rps_flow_cnt"; }
# Processes udevd started for nftune since the cursor (udevd logs each command at debug).
udevd_cursor() { journalctl -u systemd-udevd.service -n 0 --show-cursor |
    sed -n 's/^-- cursor: //p'; }
nftune_runs() { journalctl -u systemd-udevd.service --after-cursor="$1" -o cat |
    grep -c "nftune rps apply"; }
udevadm control --log-level=debug
one=$(nic_with 1); two=$(nic_with 2)
check rps-unit active "$(systemctl is-active nftune-rps.service)"
check one-queue-mask f "$(mask "$one" rx-0)"
check one-queue-flows 32768 "$(flows "$one" rx-0)"
check two-queue-masks "f f" "$(mask "$two" rx-0) $(mask "$two" rx-1)"
check two-queue-flows "16384 16384" "$(flows "$two" rx-0) $(flows "$two" rx-1)"
check rfs-table 32768 "$(cat /proc/sys/net/core/rps_sock_flow_entries)"
# rps_default_mask: kernels 6.3 and later have it, and nftune uses it there.
case $(uname -r) in 5.*|6.[0-2].*) want=absent ;; *) want=f ;; esac
have=absent
[ -e /proc/sys/net/core/rps_default_mask ] && have=$(tr -d ',\n' \
    < /proc/sys/net/core/rps_default_mask | sed 's/^0*//; s/^$/0/')
check default-mask "$want" "$have"
# Virtual devices: no mask, and udev starts no process for them (only for a NIC's queue).
cursor=$(udevd_cursor)
ip link add nftv0 type veth peer name nftv1
ip link add nftd0 type dummy
udevadm settle
check veth-mask 0 "$(mask nftv0 rx-0)"
check dummy-mask 0 "$(mask nftd0 rx-0)"
check virtual-starts-nothing 0 "$(nftune_runs "$cursor")"
# A NIC hot-plugged now (QMP device_add) gets its mask from the udev rule.
before=$(ls /sys/class/net)
added() { ls /sys/class/net | grep -vxF "$before" | head -n 1; }
cursor=$(udevd_cursor)
echo "NFTUNE-E2E QMP hotplug"
for _ in $(seq 120); do
    [ -n "$(added)" ] && break
    sleep 0.5
done
udevadm settle
new=$(added)  # its name once udev has renamed it
check hotplugged yes "${new:+yes}"
check hotplug-mask f "$(mask "${new:-none}" rx-0 2>/dev/null)"
check hotplug-ran-nftune yes "$([ "$(nftune_runs "$cursor")" -gt 0 ] && echo yes)"
udevadm control --log-level=info
# A renamed interface keeps its mask: it belongs to the queue.
ip link set dev "$one" name nftren0
udevadm settle
check renamed-mask f "$(mask nftren0 rx-0)"
show verify-exit nftune verify
show rps-show-exit nftune rps show
"""

# Ordered as kubeadm's kubelet.service is: after the network is online.
KUBELET = """[Unit]
Description=A stand-in for kubelet: records when it starts
Wants=network-online.target
After=network-online.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
"""


def _kubelet(rootfs: Path, inputs: Inputs) -> None:
    """nftune installed offline, and a kubelet.service that only records its start."""
    install_offline(rootfs, inputs)
    unit = rootfs / "etc/systemd/system/kubelet.service"
    unit.write_text(KUBELET)
    (rootfs / "etc/systemd/system/multi-user.target.wants/kubelet.service").symlink_to(
        "/etc/systemd/system/kubelet.service")


def _conntrack_auto(rootfs: Path, inputs: Inputs) -> None:
    """[Conntrack] Max=auto and Buckets=auto, set before the image's offline install; 3 %
    of the guest's 1 GiB caps the table below kube-proxy's 131072."""
    conf = rootfs / "etc/nftune/nftune.conf.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "conntrack.conf").write_text(
        "[Conntrack]\nMax=auto\nBuckets=auto\nMemoryShare=3%\n")
    install_offline(rootfs, inputs)


# The wanted size, worked out here from the guest's CPUs and memory by the README's rule
# (not by nftune): kube-proxy's formula, capped at 3 % of RAM, less 511 buckets of the
# kernel's rounding, at 320 + 2 bytes per entry (the module is not loaded when
# nftune-conntrack.service sizes it).
CONNTRACK = """
cpus=$(grep -c ^processor /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { print $2 * 1024 }' /proc/meminfo)
max=$(awk -v c="$cpus" -v m="$mem" 'BEGIN {
    f = 32768 * c; if (f > 1048576) f = 1048576; if (f < 131072) f = 131072
    cap = int((m * 3 / 100 - 511 * 8) / 322); print (cap < f ? cap : f) }')
buckets=$(( ( (max + 3) / 4 + 511 ) / 512 * 512 ))
say "Wanted for $cpus CPUs and $mem bytes: max $max, buckets $buckets"
check sizing-unit success "$(systemctl show -P Result nftune-conntrack.service)"
check max-at-boot "$max" "$(cat /proc/sys/net/netfilter/nf_conntrack_max)"
check buckets-at-boot "$buckets" "$(cat /proc/sys/net/netfilter/nf_conntrack_buckets)"
check hashsize-param "$buckets" "$(cat /sys/module/nf_conntrack/parameters/hashsize)"
# From the first load: modprobe read nftune's file, and nobody resized the table later
# (nftune-conntrack.service ran before the module existed, and says so).
check modprobe-sees-nftunes-option "options nf_conntrack hashsize=$buckets" \
    "$(modprobe -c | grep '^options nf_conntrack ')"
sized=$(systemctl show -P ExecMainExitTimestampMonotonic nftune-conntrack.service)
loaded_at=$(systemctl show -P ExecMainStartTimestampMonotonic systemd-modules-load.service)
check sized-before-modules-load yes "$([ "$sized" -gt 0 ] && [ "$sized" -le "$loaded_at" ] \
    && echo yes || echo "no: sized @$sized, modules-load @$loaded_at")"
check no-later-resize "" "$(journalctl -b -o cat -u nftune-conntrack.service | grep hashsize)"
show sizing-log sh -c 'journalctl -b -o cat -u nftune-conntrack.service | grep conntrack:'
show verify-conntrack nftune verify --check conntrack-size --check modprobe-options
"""

GATE = """
mono() { systemctl show -P "$2" "$1"; }
say "Boot 1: Gate=no, Repair=no: verify passed, and nothing waited for it"
check verify-passed success "$(mono nftune-verify.service Result)"
check nothing-after-verify none "$(mono nftune-verify.service Before | tr ' ' '\n' |
    grep -vx shutdown.target | tr '\n' ' ' | grep . || echo none)"
check kubelet-not-after-verify yes "$(mono kubelet.service After |
    grep -qw nftune-verify.service && echo no || echo yes)"
# Next boot: the gate on, and an admin file that overrides nftune's value.
mkdir -p /etc/nftune/nftune.conf.d
printf '[Verify]\nGate=yes\n' > /etc/nftune/nftune.conf.d/gate.conf
nftune apply > /tmp/apply.log 2>&1
check apply-exit 0 $?
check gate-dropin yes "$([ -f /etc/systemd/system/kubelet.service.d/nftune-gate.conf ] \
    && echo yes || echo no)"
echo "net.netfilter.nf_conntrack_tcp_be_liberal = 0" > /etc/sysctl.d/99-zz-local.conf
""", """
say "Boot 2: Gate=yes and a broken configuration: kubelet does not start"
check verify-failed failed "$(systemctl show -P ActiveState nftune-verify.service)"
check kubelet-not-started 0 "$(systemctl show -P ExecMainStartTimestampMonotonic kubelet.service)"
show verify-names-the-file sh -c "nftune verify | grep 99-zz-local.conf"
rm /etc/sysctl.d/99-zz-local.conf
nftune apply > /tmp/apply.log 2>&1
check apply-exit 0 $?
systemctl start kubelet.service
check kubelet-started-after-fix active "$(systemctl show -P ActiveState kubelet.service)"
# The gate's start of kubelet ran the check first, and waited for it.
verified=$(systemctl show -P ExecMainExitTimestampMonotonic nftune-verify.service)
started=$(systemctl show -P ExecMainStartTimestampMonotonic kubelet.service)
check verify-before-kubelet yes "$([ "$verified" -gt 0 ] && [ "$verified" -le "$started" ] \
    && echo yes || echo "no: verify done @$verified, kubelet started @$started")"
"""

# The bug itself (e2e/guest/rstlab.py): 20 connections through a service in each
# kube-proxy mode's shape (nftables from Linux 5.13, as kube-proxy requires), each sent one
# out-of-window segment by the backend; then dpkg -i in the same boot and the lab again.
# A segment far ahead of the window resets the connection in every mode, on every kernel;
# an old retransmission only before Linux 6.1, which ignores overly delayed segments; an
# acknowledgement of unsent data is INVALID too, but the host's RST falls outside the
# backend's window and nothing dies. iptables mode's drop rule (FORWARD) stops the reset
# when the backend answers a pod's own address, not when the service masqueraded the
# client: that segment is addressed to the node (INPUT), as kubernetes#117924 reports.
# With nftune, no mode resets anything and iptables mode installs no drop rule.
# Then, on bookworm, node_exporter reads nftune's metrics (e2e/guest/scrape.py) while
# nftune-verify.timer's runs replace the file.
RST_LAB = f"""
dmesg -n 1  # the kernel's notes (IPVS loaded, links up) stay out of the console
# First, while no lab has loaded anything:
say "nftune's sysctl data, re-measured on a random sample of its modules"
python3 {STATE}/sysctlmap.py --compare {STATE}/sysctl-owner.json \\
    < {STATE}/sysctl-sample.txt > /tmp/sysctl-compare.txt 2>&1
sed 's/^/    | /' /tmp/sysctl-compare.txt
check sysctl-data-disagree 0 "$(kv disagree /tmp/sysctl-compare.txt)"
check sysctl-data-checked yes "$([ "$(kv checked /tmp/sysctl-compare.txt)" -ge 10 ] \\
    && echo yes || echo no)"
delayed=0 modes="ipvs nftables iptables"
case $(uname -r) in 5.10.*) delayed=20 modes="ipvs iptables" ;; esac
# lab NAME ARGS...: one rstlab.py run, every kind of segment, shown, in /tmp/rst-NAME.txt
lab() {{
    name=$1; shift
    python3 {STATE}/rstlab.py --kind all "$@" > /tmp/rst-$name.txt 2>&1
    sed 's/^/    | /' /tmp/rst-$name.txt
}}
say "Without nftune (nf_conntrack_tcp_be_liberal is the kernel's default, 0):"
for mode in $modes; do
    lab $mode --mode $mode
    check $mode-reset-ahead 20 "$(field reset /tmp/rst-$mode.txt ahead)"
    check $mode-reset-delayed $delayed "$(field reset /tmp/rst-$mode.txt delayed)"
    check $mode-reset-ack-ahead 0 "$(field reset /tmp/rst-$mode.txt ack-ahead)"
    check $mode-invalid-ahead 20 "$(field segment_invalid /tmp/rst-$mode.txt ahead)"
    check $mode-rst-sent-ahead +20 "$(field host_TcpOutRsts /tmp/rst-$mode.txt ahead)"
done
check iptables-drop-rule yes "$(field drop_rule /tmp/rst-iptables.txt ahead)"
check iptables-dropped-masqueraded 0 "$(field dropped /tmp/rst-iptables.txt ahead)"
say "iptables mode, the client a pod (no masquerade): the drop rule takes the segment"
lab iptables-pod --mode iptables --pod-client
for kind in ahead delayed ack-ahead; do
    check iptables-pod-reset-$kind 0 "$(field reset /tmp/rst-iptables-pod.txt $kind)"
done
check iptables-pod-dropped-ahead 20 "$(field dropped /tmp/rst-iptables-pod.txt ahead)"
dpkg -i {STATE}/nftune.deb > /tmp/dpkg.log 2>&1
check dpkg-exit 0 $?
check value-at-once 1 "$(liberal)"
say "With nftune:"
for mode in $modes; do
    lab $mode --mode $mode
    for kind in ahead delayed ack-ahead; do
        check with-nftune-$mode-reset-$kind 0 "$(field reset /tmp/rst-$mode.txt $kind)"
        check with-nftune-$mode-alive-$kind 20 "$(field alive /tmp/rst-$mode.txt $kind)"
        check with-nftune-$mode-invalid-$kind 0 \\
            "$(field segment_invalid /tmp/rst-$mode.txt $kind)"
    done
done
check with-nftune-iptables-drop-rule no "$(field drop_rule /tmp/rst-iptables.txt ahead)"
check lab-left-nothing "" "$(ip netns list; ipvsadm -Ln | grep -F 10.96.0.10;
    nft list ruleset | grep -E 'kube-proxy|rstlab|KUBE-'; iptables-save | grep -F KUBE-)"
. /etc/os-release
if [ "$VERSION_CODENAME" = bookworm ]; then
    check node-exporter-installed yes "$([ -x /usr/bin/prometheus-node-exporter ] \\
        && echo yes || echo no)"
    say "node_exporter reads nftune's metrics (textfile directory, Debian's default)"
    mkdir -p /etc/nftune/nftune.conf.d
    printf '[Verify]\nPrometheusDirectory = /var/lib/prometheus/node-exporter\n' \
        > /etc/nftune/nftune.conf.d/prometheus.conf
    nftune apply > /tmp/apply.log 2>&1
    check prometheus-apply-exit 0 $?
    systemctl start prometheus-node-exporter.service nftune-verify.service
    python3 {STATE}/scrape.py 0 > /tmp/scrape.txt 2>&1
    tries=0
    until grep -q '^scrape ' /tmp/scrape.txt || [ $tries -ge 30 ]; do
        sleep 1; tries=$((tries + 1)); python3 {STATE}/scrape.py 0 > /tmp/scrape.txt 2>&1
    done
    sed 's/^/    | /' /tmp/scrape.txt
    check scrape-errors 0 "$(kv scrape_errors /tmp/scrape.txt)"
    check scrape-whole 0 "$(kv partial /tmp/scrape.txt)"
    python3 -c 'import urllib.request; print(urllib.request.urlopen(
        "http://localhost:9100/metrics", timeout=10).read().decode())' \
        | grep -E '^(nftune_check_ok|nftune_ordering_proven|node_textfile_scrape_error)' \
        > /tmp/metrics.txt
    sed 's/^/    | /' /tmp/metrics.txt
    check scrape-be-liberal-ok yes "$(grep -qF \
        'check="sysctl-value",subject="net.netfilter.nf_conntrack_tcp_be_liberal"}} 1' \
        /tmp/metrics.txt && echo yes || echo no)"
    say "nftune-verify.timer 2 s after each run, node_exporter scraped in a loop for 40 s"
    mkdir -p /run/systemd/system/nftune-verify.timer.d
    printf '[Timer]\nOnUnitInactiveSec=\nOnUnitInactiveSec=2s\nRandomizedDelaySec=0\n%s\n' \
        AccuracySec=100ms > /run/systemd/system/nftune-verify.timer.d/fast.conf
    systemctl daemon-reload
    systemctl restart nftune-verify.timer
    python3 {STATE}/scrape.py 40 > /tmp/scrape.txt 2>&1
    sed 's/^/    | /' /tmp/scrape.txt
    check loop-scrape-errors 0 "$(kv scrape_errors /tmp/scrape.txt)"
    check loop-scrape-whole 0 "$(kv partial /tmp/scrape.txt)"
    check loop-timer-runs-seen yes "$([ "$(kv runs_seen /tmp/scrape.txt)" -ge 3 ] \\
        && echo yes || echo no)"
    rm -r /run/systemd/system/nftune-verify.timer.d
    systemctl daemon-reload
    systemctl stop nftune-verify.timer
    say "The control: the same file rewritten in place, a line at a time, for 10 s"
    python3 {STATE}/scrape.py 10 --torn /var/lib/prometheus/node-exporter/nftune.prom \\
        > /tmp/scrape.txt 2>&1
    sed 's/^/    | /' /tmp/scrape.txt
    check torn-file-seen yes "$(grep -q '^scrape scrapes=[1-9]' /tmp/scrape.txt && {{
        [ "$(kv scrape_errors /tmp/scrape.txt)" != 0 ] ||
        [ "$(kv partial /tmp/scrape.txt)" != 0 ]; }} && echo yes || echo no)"
    systemctl start nftune-verify.timer
fi
"""

SCENARIOS = (
    Scenario(
        "baseline", "no nftune: sysctl.d alone, then a late load; the bug: the value is 0",
        # On bookworm the demo's first boot (tools/demo, which tests/run runs) checks the
        # same: it stands for this scenario there.
        (BASELINE,), _sysctl_d_only, releases=("bullseye", "trixie")),
    Scenario(
        "offline", "dpkg --root into the image, as an image build does, with a blacklist "
                   "line: verify --root fails before the boot, the value is lost until a "
                   "late load and the safety net; without it, the next boot: 1",
        (f"""
check verify-root-exit 1 "$(cat {STATE}/verify-root.rc)"
check verify-root-names-blacklist yes "$(grep -F \
    'failed: module-insert nf_conntrack [blacklisted]' {STATE}/verify-root.txt |
    grep -q '50-hardening.conf:2' && echo yes || echo no)"
check blacklisted-at-boot absent "$(loaded)"
check blacklisted-value-at-boot missing "$(liberal)"
check deny-listed-in-journal yes "$(journalctl -b -o cat SYSLOG_IDENTIFIER=systemd-modules-load |
    grep -q "Module 'nf_conntrack' is deny-listed" && echo yes || echo no)"
nftune verify > /tmp/verify.txt 2>&1
check blacklisted-verify-exit 1 $?
check blacklisted-verify-names-it yes "$(grep -qF \
    'failed: module-insert nf_conntrack [blacklisted]' /tmp/verify.txt && echo yes || echo no)"
modprobe nf_conntrack
udevadm settle
check value-after-late-load-safety-net 1 "$(liberal)"
rm /{BLACKLIST}
# kubeadm's k8s.conf: predicted lost before the boot, lost at it; Load=auto cures it.
check k8s-conf-predicted-lost yes "$(grep -F \
    "failed: node-sysctl net.bridge.bridge-nf-call-iptables, expected '1' [lost-at-boot]" \
    {STATE}/verify-root.txt | grep -q 'k8s.conf:1 sets it, but br_netfilter' \
    && echo yes || echo no)"
check k8s-bridge-key-at-boot missing "$(cat {BRIDGE_KEY} 2>/dev/null || echo missing)"
mkdir -p /etc/nftune/nftune.conf.d
printf '[Modules]\nLoad = auto\n' > /etc/nftune/nftune.conf.d/auto.conf
nftune apply > /tmp/apply.log 2>&1
check auto-apply-exit 0 $?
check auto-lists-br_netfilter yes "$(grep -qx br_netfilter /etc/modules-load.d/nftune.conf \
    && echo yes || echo no)"
""", f"""
check nf_conntrack-at-boot loaded "$(loaded)"
check value-at-boot 1 "$(liberal)"
check k8s-bridge-key-at-boot 1 "$(cat {BRIDGE_KEY} 2>/dev/null || echo missing)"
""" + VERIFY_AND_CHAIN),
        _offline_blacklisted, ("deb",)),
    Scenario(
        "first-boot", "the README's apt install on the running guest: 1 at once; after a "
        "reboot, 1 at boot",
        (f"""
cd {STATE} && ln -sf nftune.deb nftune_e2e_amd64.deb
apt install ./nftune_*.deb > /tmp/dpkg.log 2>&1
check dpkg-exit 0 $?
cd /
check value-at-once 1 "$(liberal)"
""", """
check value-at-boot 1 "$(liberal)"
""" + VERIFY_AND_CHAIN),
        # On bookworm the README's demo (tools/demo, which tests/run runs) installs and
        # checks the same, after the bug: its boots stand for this scenario's there.
        _copy_deb, ("deb",), releases=("bullseye", "trixie")),
    Scenario(
        "reboot-loop", f"{REBOOTS} boots of one image: 1 and verify passing on every boot",
        tuple("""
check value-at-boot 1 "$(liberal)"
show verify-exit nftune verify
""" for _ in range(REBOOTS)),
        install_offline, ("deb",)),
    Scenario(
        "drift", "an admin's later sysctl.d file sets 0: verify fails and names it",
        ("""
check value-at-boot 0 "$(liberal)"
nftune verify > /tmp/verify.txt 2>&1
check verify-exit 1 $?
check names-the-file yes "$(grep -q 99-zz-local.conf /tmp/verify.txt && echo yes || echo no)"
""",),
        _drift, ("deb",)),
    Scenario(
        "purge", "install, then purge: no nftune file left; the next boot is the baseline",
        (f"""
dpkg -i {STATE}/nftune.deb > /tmp/dpkg.log 2>&1
check dpkg-install-exit 0 $?
dpkg -P nftune >> /tmp/dpkg.log 2>&1
check dpkg-purge-exit 0 $?
""" + LEFTOVERS, BASELINE),
        _sysctl_d_and_deb, ("deb",)),
    Scenario(
        "rpm", "the .rpm with rpm -i --nodeps, scriptlets against the real systemd; reboot",
        (f"""
rpm -i --nodeps {STATE}/nftune.rpm > /tmp/rpm.log 2>&1
check rpm-exit 0 $?
check value-at-once 1 "$(liberal)"
""", """
check value-at-boot 1 "$(liberal)"
""" + VERIFY_AND_CHAIN),
        _copy_rpm, ("rpm",), ("bookworm",)),
    Scenario(
        "gate", "Gate=no: nothing waits for verify; Gate=yes and an override: a stand-in "
                "kubelet does not start until the override is gone, then after verify",
        GATE, _kubelet, ("deb",), ("bookworm",)),
    Scenario(
        "cycle", "an admin's drop-in orders modules-load after an agent that runs after "
                 "sysinit.target: a cycle, named offline and live with the journal's line",
        (CYCLE,), _agent_cycle, ("deb",), ("bookworm",)),
    Scenario(
        "rst", "the reset storm in each kube-proxy mode's shape (IPVS, nftables, iptables "
               "with its drop rule): connections reset without nftune; after dpkg -i in "
               "the same boot, none; node_exporter reads nftune's metrics (bookworm)",
        (RST_LAB,), _rst, ("deb",), timeout=900),
    Scenario(
        "conntrack", "Max=auto, Buckets=auto, MemoryShare=3%: the table sized for the "
                     "machine that boots (capped by its memory), its hash size from "
                     "nftune's modprobe.d file at the first load",
        (CONNTRACK,), _conntrack_auto, ("deb",), ("bullseye", "bookworm")),
    Scenario(
        "rps", "4 CPUs, a 1-queue and a 2-queue NIC, a hot-plugged NIC, a veth and a dummy: "
               "masks, RFS, exclusion, verify",
        (RPS,), install_offline, ("deb",), hardware=RPS_HARDWARE),
)

# `python -m e2e --demo` (tools/demo): the bug, then the fix, in one run; its output is
# printed, and its assertions count like a scenario's.
DEMO = Scenario(
    "demo", "the bug without nftune, then dpkg -i, a reboot, verify and chain",
    (f"""
say "Boot 1, without nftune. The admin's sysctl.d line, as on most nodes:"
show cat-exit cat /etc/sysctl.d/90-local.conf
say "At boot nf_conntrack was $(loaded), so systemd-sysctl could not set the key:"
check nf_conntrack-at-boot absent "$(loaded)"
show journal-exit couldnt_write
say "kube-proxy (or an nft ct rule) loads nf_conntrack later; the key keeps its default:"
modprobe nf_conntrack
show sysctl-exit sysctl {KEY}
check value-after-late-load 0 "$(liberal)"
dmesg -n 1  # the kernel's notes (IPVS loaded, links up) stay out of the console
say "What users see: 20 connections through an IPVS service (kube-proxy's shape), each"
say "sent one segment beyond the TCP window by the backend (e2e/guest/rstlab.py):"
python3 {STATE}/rstlab.py --show-rst > /tmp/rst.txt 2>&1
sed 's/^/    | /' /tmp/rst.txt
check resets-without-nftune 20 "$(field reset /tmp/rst.txt)"
say "Install nftune as the README does; its postinst applies the fix at once:"
cd {STATE} && ln -sf nftune.deb nftune_demo_amd64.deb
show apt-exit apt install ./nftune_*.deb
cd /
check value-at-once 1 "$(liberal)"
say "The same 20 connections, with nftune:"
python3 {STATE}/rstlab.py > /tmp/rst.txt 2>&1
sed 's/^/    | /' /tmp/rst.txt
check resets-with-nftune 0 "$(field reset /tmp/rst.txt)"
""", f"""
say "Boot 2, with nftune. nf_conntrack at boot: $(loaded); the value:"
show sysctl-exit sysctl {KEY}
check value-at-boot 1 "$(liberal)"
say "nftune-verify.service checked this boot:"
check verify-unit success "$(systemctl show -P Result nftune-verify.service)"
say "nftune verify: every check, with expected and actual:"
show verify-exit nftune verify
say "nftune chain: the ordering, proven from this boot's timestamps:"
show chain-exit nftune chain
check chain-live true "$(nftune chain --json | grep -o '"live": [a-z]*' | cut -d' ' -f2)"
"""),
    _sysctl_d_and_deb, ("deb",))


def by_name(names: list[str] | None) -> list[Scenario]:
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"e2e: no scenario {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names]
