#!/usr/bin/env python3
"""The reset storm of kubernetes#74839, reproduced in the guest with the kernel's own
netfilter, in the shape each kube-proxy mode gives a ClusterIP service. A client and a
backend live in network namespaces joined to the host's by veth pairs; traffic never
leaves the guest.

- ipvs: the service address on a dummy interface, an IPVS virtual server,
  net.ipv4.vs.conntrack=1 and masquerade toward the backend (pkg/proxy/ipvs);
- nftables: kube-proxy's table (pkg/proxy/nftables): DNAT at prerouting through the
  service-ips verdict map to the service's and the endpoint's chains, the masquerade mark
  and masquerade at postrouting; no rule for INVALID packets. Linux 5.13 or later, as
  kube-proxy requires;
- iptables: KUBE-SERVICES, KUBE-SVC-, KUBE-SEP- (DNAT), KUBE-MARK-MASQ and
  KUBE-POSTROUTING in nat, and KUBE-FORWARD in filter with the INVALID drop rule when
  nf_conntrack_tcp_be_liberal is 0 at the lab's start, as kube-proxy decides at its own
  start (pkg/proxy/iptables).

The client is outside the cluster CIDR, so the service's traffic is masqueraded, as
kube-proxy does for such clients; --pod-client puts the client inside it (iptables and
nftables modes), so only the endpoint's DNAT applies and the backend answers the client's
own address.

For each of N fresh connections through the service, the backend's kernel is made to
send one segment outside the TCP window (crafted with a raw socket, with the connection's
real sequence numbers, read in TCP repair mode). Conntrack marks it INVALID and skips its
NAT. Masqueraded, it is addressed to the host, which has no socket for it and answers with
a RST to the backend, which tears the backend's side down: the client's next request is
reset. With nf_conntrack_tcp_be_liberal=1 the segment stays in the connection and is
NATed; the client's stack drops it.

    rstlab.py [--mode ipvs|nftables|iptables] [--kind ahead|delayed|ack-ahead|all] [-n N]
              [--pod-client] [--show-rst]

One line of results per kind (the mode, whether the drop rule was installed, connections reset,
alive, stalled or otherwise ended, connections replaced because their setup failed before the
segment, the segments conntrack marked INVALID, its `invalid` counter (all the node's
packets), the host's TcpOutRsts, RSTs captured at the backend, segments the drop rule
dropped), and with --show-rst one captured RST. It sets up and removes everything itself,
also on failure, and stops within a bounded time.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

VIP, PORT, BACKEND, BPORT = "10.96.0.10", 80, "10.0.2.2", 8080
CLONE_NEWNET = 0x40000000
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ = 19, 20, 21
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
ETH_P_IP, PACKET_OUTGOING = 0x0800, 4
RST = 0x04
TCP_INFO = 11
BARRIER_PORT = 9
POD_CLIENT = "10.0.1.2"  # c0
WAIT = 10.0  # seconds any one step may take: a TCG guest on a busy host pauses
SETUP_TRIES = 3  # new connections for one whose setup failed before its segment
OFFSETS = {  # (seq, ack) of the injected segment, from the backend's snd_nxt and rcv_nxt
    "ahead": (1 << 28, 0),  # sequence far beyond the client's window
    "delayed": (-100000, 0),  # an old retransmission (kubernetes#74839's own test)
    "ack-ahead": (0, 1 << 28),  # acknowledges data the client never sent
}
CLUSTER_CIDR, POD_CIDR = "10.244.0.0/16", "10.0.1.0/24"
PAYLOAD = b"boom!!!"  # the injected segments' own, and no other packet's
NETWORK = (
    "ip netns add client", "ip netns add backend",
    "ip link add hc type veth peer name c0 netns client",
    "ip link add hb type veth peer name b0 netns backend",
    "ip addr add 10.0.1.1/24 dev hc", "ip link set hc up",
    "ip addr add 10.0.2.1/24 dev hb", "ip link set hb up",
    f"ip -n client addr add {POD_CLIENT}/24 dev c0", "ip -n client link set c0 up",
    "ip -n client link set lo up", "ip -n client route add default via 10.0.1.1",
    f"ip -n backend addr add {BACKEND}/24 dev b0", "ip -n backend link set b0 up",
    "ip -n backend link set lo up", "ip -n backend route add default via 10.0.2.1",
    "sysctl -qw net.ipv4.ip_forward=1",
    # No RPS on the lab's links (rps_default_mask may give new devices a mask): each
    # packet is then processed on the CPU that handed it on, in order (Barrier).
    "set -e; for q in /sys/class/net/h[cb]/queues/rx-*/rps_cpus; do echo 0 > $q; done",
    *(f"ip netns exec {ns} sh -ec 'for q in /sys/class/net/{dev}/queues/rx-*/rps_cpus;"
      " do echo 0 > $q; done'" for ns, dev in (("client", "c0"), ("backend", "b0"))),
)
IPVS = (
    "ip link add kube-ipvs0 type dummy", f"ip addr add {VIP}/32 dev kube-ipvs0",
    "ip link set kube-ipvs0 up",
    "modprobe ip_vs", "sysctl -qw net.ipv4.vs.conntrack=1",
    f"ipvsadm -A -t {VIP}:{PORT} -s rr",
    f"ipvsadm -a -t {VIP}:{PORT} -r {BACKEND}:{BPORT} -m",
    "nft add table ip rstlab",
    "nft 'add chain ip rstlab post { type nat hook postrouting priority srcnat; }'",
    "nft add rule ip rstlab post ip daddr 10.0.2.0/24 masquerade",
)
# conntrack's `invalid` counter counts every packet of the node (it once rose by 1 in a run
# whose 20 connections all stayed alive); this counts the injected segments conntrack marked
# INVALID, by their payload, after conntrack's hook.
COUNT = (
    "nft add table ip rstlab-count",
    "nft 'add chain ip rstlab-count pre { type filter hook prerouting priority mangle; }'",
    f"nft add rule ip rstlab-count pre ip saddr {BACKEND} tcp sport {BPORT} "
    f"@th,160,32 0x{PAYLOAD[:4].hex()} @th,192,24 0x{PAYLOAD[4:].hex()} "
    "ct state invalid counter",
)
SVC, SEP = "KUBE-SVC-RSTLAB0000000000", "KUBE-SEP-RSTLAB0000000000"
CHAINS = (("nat", "PREROUTING", "KUBE-SERVICES"), ("nat", "OUTPUT", "KUBE-SERVICES"),
          ("nat", "POSTROUTING", "KUBE-POSTROUTING"), ("filter", "FORWARD", "KUBE-FORWARD"))


def iptables_rules(cluster_cidr: str, drop_invalid: bool) -> str:
    """kube-proxy's iptables-restore input for one ClusterIP service with one endpoint
    (pkg/proxy/iptables/proxier.go), without the chains a ClusterIP never reaches."""
    drop = ["-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"] if drop_invalid else []
    return "\n".join([
        "*nat",
        ":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
        f":{SVC} - [0:0]", f":{SEP} - [0:0]",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        f"-A KUBE-SERVICES -d {VIP}/32 -p tcp -m tcp --dport {PORT} -j {SVC}",
        f"-A {SVC} ! -s {cluster_cidr} -d {VIP}/32 -p tcp -m tcp --dport {PORT} "
        "-j KUBE-MARK-MASQ",
        f"-A {SVC} -j {SEP}",
        f"-A {SEP} -s {BACKEND}/32 -j KUBE-MARK-MASQ",
        f"-A {SEP} -p tcp -m tcp -j DNAT --to-destination {BACKEND}:{BPORT}",
        "COMMIT",
        "*filter",
        ":KUBE-FORWARD - [0:0]",
        *drop,
        "-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "COMMIT", ""])


def nftables_rules(cluster_cidr: str) -> str:
    """kube-proxy's nftables table for one ClusterIP service with one endpoint
    (pkg/proxy/nftables/proxier.go): no rule for INVALID packets."""
    svc = f"service-RSTLAB00-default/web/tcp/p{PORT}"
    ep = f"endpoint-RSTLAB00-default/web/tcp/p{PORT}__{BACKEND}/{BPORT}"
    return f"""table ip kube-proxy {{
    map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}
    chain mark-for-masquerade {{ meta mark set meta mark | 0x4000 ; }}
    chain masquerading {{
        meta mark & 0x4000 == 0 return
        meta mark set meta mark ^ 0x4000
        masquerade fully-random
    }}
    chain services {{ ip daddr . meta l4proto . th dport vmap @service-ips ; }}
    chain nat-prerouting {{ type nat hook prerouting priority dstnat ; jump services ; }}
    chain nat-output {{ type nat hook output priority -100 ; jump services ; }}
    chain nat-postrouting {{ type nat hook postrouting priority srcnat ; jump masquerading ; }}
    chain {ep} {{
        ip saddr {BACKEND} jump mark-for-masquerade
        meta l4proto tcp dnat to {BACKEND}:{BPORT}
    }}
    chain {svc} {{
        ip daddr {VIP} tcp dport {PORT} ip saddr != {cluster_cidr} jump mark-for-masquerade
        numgen random mod 1 vmap {{ 0 : goto {ep} }}
    }}
}}
add element ip kube-proxy service-ips {{ {VIP} . tcp . {PORT} : goto {svc} }}
"""


OWN_CHAINS = (("nat", "KUBE-SERVICES"), ("nat", SVC), ("nat", SEP), ("nat", "KUBE-MARK-MASQ"),
              ("nat", "KUBE-POSTROUTING"), ("filter", "KUBE-FORWARD"))
TEARDOWN = ("ipvsadm -C", "nft delete table ip rstlab", "nft delete table ip kube-proxy",
            "nft delete table ip rstlab-count", "ip link del kube-ipvs0",
            *(f"iptables -t {t} -D {c} -j {j}" for t, c, j in CHAINS),
            *(f"iptables -t {t} -{op} {c}" for op in "FX" for t, c in OWN_CHAINS),
            "ip link del hc", "ip link del hb", "ip netns del client", "ip netns del backend")
libc = ctypes.CDLL(None, use_errno=True)


def teardown() -> None:
    for c in TEARDOWN:
        subprocess.run(c, shell=True, check=False, stderr=subprocess.DEVNULL)


def in_ns(name: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket made in network namespace `name` (a socket keeps its namespace)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        return socket.socket(family, kind, proto)
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        os.close(there)


def sequence(s: socket.socket) -> tuple[int, int]:
    """(snd_nxt, rcv_nxt) of a connected socket, read in TCP repair mode."""
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    try:
        out: list[int] = []
        for queue in (TCP_SEND_QUEUE, TCP_RECV_QUEUE):
            s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
            out.append(struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0])
    finally:
        try:
            s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, -1)  # off, without a window probe
        except OSError:
            s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)
    return out[0], out[1]


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def segment(src: str, dst: str, sport: int, dport: int, seq: int, ack: int) -> bytes:
    """An IPv4 TCP segment (PSH|ACK) with correct checksums: conntrack must judge its
    window, not its checksum."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % (1 << 32), ack % (1 << 32),
                      5 << 4, 0x18, 502, 0, 0) + PAYLOAD
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6,
                                                                         len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + tcp


def counters() -> tuple[int, int]:
    """conntrack's `invalid` (all CPUs) and TcpOutRsts, in the host's namespace."""
    with open("/proc/net/stat/nf_conntrack") as f:
        col = f.readline().split().index("invalid")
        invalid = sum(int(line.split()[col], 16) for line in f)
    with open("/proc/net/snmp") as f:
        head, values = [line.split() for line in f if line.startswith("Tcp:")]
    return invalid, int(values[head.index("OutRsts")])


def captured_rsts(cap: socket.socket) -> list[str]:
    """RSTs that reached the backend since the last call, as lines."""
    out: list[str] = []
    while True:
        try:
            frame, addr = cap.recvfrom(65535)
        except BlockingIOError:
            return out
        if addr[2] == PACKET_OUTGOING or len(frame) < 40 or frame[9] != 6:  # TCP, in
            continue
        ihl = (frame[0] & 0x0F) * 4
        sport, dport, seq, ack, _, flags = struct.unpack("!HHIIBB", frame[ihl:ihl + 14])
        if flags & RST:
            src, dst = socket.inet_ntoa(frame[12:16]), socket.inet_ntoa(frame[16:20])
            out.append(f"RST {src}:{sport} > {dst}:{dport} seq={seq} ack={ack}")


def liberal() -> str:
    with open("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal") as f:
        return f.read().strip()


def dropped() -> int:
    """Packets the INVALID drop rule dropped (0 when there is none)."""
    out = subprocess.run(["iptables", "-w", "-t", "filter", "-L", "KUBE-FORWARD", "-v", "-x",
                          "-n"], capture_output=True, text=True, check=False).stdout
    return sum(int(line.split()[0]) for line in out.splitlines()
               if "DROP" in line and "INVALID" in line)


def segments_invalid() -> int:
    """The injected segments conntrack marked INVALID, so far."""
    out = subprocess.run(["nft", "list", "chain", "ip", "rstlab-count", "pre"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"counter packets (\d+)", out)
    if not m:
        raise SystemExit(f"rstlab: no counter in the rstlab-count table:\n{out}")
    return int(m.group(1))


def setup(mode: str, pod_client: bool) -> bool:
    """The network and the service in `mode`'s shape; whether a drop rule is in."""
    for c in NETWORK + COUNT:
        subprocess.run(c, shell=True, check=True)
    cidr = POD_CIDR if pod_client else CLUSTER_CIDR
    if mode == "ipvs":
        for c in IPVS:
            subprocess.run(c, shell=True, check=True)
        return False
    subprocess.run(["modprobe", "nf_conntrack"], check=True)  # what kube-proxy's rules load
    if mode == "nftables":
        subprocess.run(["nft", "-f", "-"], input=nftables_rules(cidr), text=True, check=True)
        return False
    # kube-proxy reads be_liberal once, at its start, and drops INVALID packets when it is 0.
    drop = liberal() == "0"
    jumps = "".join(f"*{t}\n-A {c} -j {j}\nCOMMIT\n" for t, c, j in CHAINS)
    subprocess.run(["iptables-restore", "-w", "--noflush"],
                   input=iptables_rules(cidr, drop) + jumps, text=True, check=True)
    return drop


def listener() -> socket.socket:
    """The backend's server socket; a fresh one drops whatever a failed setup left queued."""
    server = in_ns("backend", socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", BPORT))
    server.listen(64)
    server.settimeout(WAIT)
    return server


def connection(server: socket.socket) -> tuple[socket.socket, socket.socket, str, int]:
    """A new connection through the service with one request answered: the client's
    socket, the backend's, and the client's address and port as the backend sees them."""
    client = in_ns("client", socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(WAIT)
    try:
        client.connect((VIP, PORT))
        conn, (peer, pport) = server.accept()
    except OSError:
        client.close()
        raise
    conn.settimeout(WAIT)
    try:
        client.sendall(b"ping")
        conn.sendall(conn.recv(16))
        if client.recv(16) != b"ping":
            raise OSError("the first request was not answered")
    except OSError:
        client.close()
        conn.close()
        raise
    return client, conn, peer, pport


def acknowledged(conn: socket.socket) -> None:
    """Until the client has acknowledged all the backend sent (its ACK passed conntrack),
    or WAIT: the ACK is usually in at once, delayed at most by the client's delayed-ACK
    timer."""
    deadline = time.monotonic() + WAIT
    # tcp_info (linux/tcp.h): 8 bytes of state, then rto, ato, snd_mss, rcv_mss, unacked
    while struct.unpack_from("I", conn.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 28), 24)[0]:
        if time.monotonic() > deadline:
            print(f"rstlab: the client's ACK not in within {WAIT:g} s; going on",
                  file=sys.stderr, flush=True)
            return
        time.sleep(0.002)


class Barrier:
    """A datagram from the backend to the client's namespace and one back, four hops on the
    lab's links. Once it is home, whatever the injected segment set off within as many hops
    has reached the backend: the host's RST (the segment, the RST), or the client's RST or
    duplicate ACK (the segment, forwarded, the answer, forwarded). The lab runs on one CPU
    and its veths have no RPS (nor, by default, GRO or a queue), so every packet waits in
    that CPU's backlog, in order, and each hop of the segment's chain is taken before the
    barrier's same hop."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.far = stack.enter_context(in_ns("client", socket.AF_INET, socket.SOCK_DGRAM))
        self.home = stack.enter_context(in_ns("backend", socket.AF_INET, socket.SOCK_DGRAM))
        for s, address in ((self.far, POD_CLIENT), (self.home, BACKEND)):
            s.bind((address, BARRIER_PORT))
            s.settimeout(WAIT)
        self.nonce, self.count = os.urandom(4).hex(), 0  # an earlier kind's late datagram

    def cross(self) -> None:
        """There and back; a lost datagram costs WAIT, and the lab goes on."""
        self.count += 1
        token = f"{self.nonce}-{self.count}".encode()
        try:
            self.home.sendto(token, (POD_CLIENT, BARRIER_PORT))
            while self.far.recvfrom(64) != (token, (BACKEND, BARRIER_PORT)):
                pass  # an earlier crossing's, late
            self.far.sendto(token, (BACKEND, BARRIER_PORT))
            while self.home.recvfrom(64) != (token, (POD_CLIENT, BARRIER_PORT)):
                pass
        except socket.timeout:  # noqa: UP041 (bullseye's Python 3.9: not yet TimeoutError)
            print(f"rstlab: barrier {self.count} not home within {WAIT:g} s; going on",
                  file=sys.stderr, flush=True)


def outcome(client: socket.socket, conn: socket.socket) -> str:
    """The client's next request after the injected segment: reset, alive, stalled (no
    answer within WAIT, which is not a reset) or other (a close, or other bytes)."""
    try:
        client.sendall(b"again")
        conn.sendall(conn.recv(16))  # the backend's side may be the one torn down
        return "alive" if client.recv(16) == b"again" else "other"
    except socket.timeout:  # noqa: UP041 (bullseye's Python 3.9: not yet TimeoutError)
        return "stalled"
    except (ConnectionResetError, BrokenPipeError):  # "connection reset by peer"
        return "reset"
    except OSError:
        return "other"


def lab(n: int, kind: str, show_rst: bool, mode: str, drop: bool, pod_client: bool) -> None:
    """N connections, each sent one segment of `kind`; one result line. A connection whose
    setup fails before the segment is sent measures nothing: it is replaced, and counted."""
    with contextlib.ExitStack() as stack:  # every socket closed, also on failure
        server = listener()
        stack.callback(lambda: server.close())  # the last one: a failed setup replaces it
        raw = stack.enter_context(in_ns("backend", socket.AF_INET, socket.SOCK_RAW,
                                        socket.IPPROTO_RAW))
        cap = stack.enter_context(in_ns("backend", socket.AF_PACKET, socket.SOCK_DGRAM,
                                        socket.htons(ETH_P_IP)))
        cap.setblocking(False)
        barrier = Barrier(stack)
        seen = dict.fromkeys(("reset", "alive", "stalled", "other"), 0)
        replaced = 0
        rsts: list[str] = []
        invalid0, out_rsts0 = counters()
        segments0 = segments_invalid()
        dropped0 = dropped() if drop else 0
        for _ in range(n):
            for attempt in range(SETUP_TRIES):
                try:
                    client, conn, peer, pport = connection(server)
                    break
                except OSError as e:
                    if attempt == SETUP_TRIES - 1:
                        raise
                    print(f"rstlab: a connection's setup failed ({e!r}); a new one",
                          file=sys.stderr, flush=True)
                    replaced += 1
                    server.close()
                    server = listener()
            with conn, client:  # the client closes first, as before
                acknowledged(conn)
                snd, rcv = sequence(conn)
                seq_off, ack_off = OFFSETS[kind]
                raw.sendto(segment(BACKEND, peer, BPORT, pport, snd + seq_off, rcv + ack_off),
                           (peer, 0))
                barrier.cross()
                seen[outcome(client, conn)] += 1
            rsts += captured_rsts(cap)
    invalid1, out_rsts1 = counters()
    print(f"rstlab mode={mode} kernel={os.uname().release} be_liberal={liberal()} "
          f"drop_rule={'yes' if drop else 'no'} "
          f"client={'pod' if pod_client else 'masqueraded'} kind={kind} "
          f"connections={n} reset={seen['reset']} alive={seen['alive']} "
          f"stalled={seen['stalled']} other={seen['other']} replaced={replaced} "
          f"segment_invalid={segments_invalid() - segments0} "
          f"conntrack_invalid=+{invalid1 - invalid0} host_TcpOutRsts=+{out_rsts1 - out_rsts0} "
          f"rst_at_backend={len(rsts)} dropped={dropped() - dropped0 if drop else 0}",
          flush=True)  # a line per kind, in order with a later failure's traceback
    if show_rst and rsts:
        print(f"rstlab captured at the backend: {rsts[0]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(prog="rstlab.py")
    ap.add_argument("--mode", choices=("ipvs", "nftables", "iptables"), default="ipvs")
    ap.add_argument("--kind", choices=[*sorted(OFFSETS), "all"], default="ahead",
                    help="the segment; all: each kind in turn, one result line each")
    ap.add_argument("--pod-client", action="store_true",
                    help="the client inside the cluster CIDR: no masquerade (not ipvs)")
    ap.add_argument("-n", type=int, default=20, help="connections (default 20)")
    ap.add_argument("--show-rst", action="store_true", help="print one captured RST")
    args = ap.parse_args()
    if not 1 <= args.n <= 1000:
        ap.error("-n is 1 to 1000")
    if args.pod_client and args.mode == "ipvs":
        ap.error("--pod-client is for the iptables and nftables modes")
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    if args.mode == "nftables" and release < (5, 13):
        sys.exit(f"rstlab: kube-proxy's nftables mode needs Linux 5.13 or later, not "
                 f"{os.uname().release}")
    # Bounded: a connection's steps take far less than WAIT each; the bound leaves room
    # for a few that wait their whole WAIT.
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("rstlab: timed out"))
    kinds = list(OFFSETS) if args.kind == "all" else [args.kind]
    signal.alarm(60 + 3 * args.n * len(kinds))
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one CPU: see Barrier
    teardown()  # what a killed run left
    try:
        drop = setup(args.mode, args.pod_client)
        for kind in kinds:
            lab(args.n, kind, args.show_rst, args.mode, drop, args.pod_client)
    finally:
        teardown()


if __name__ == "__main__":
    main()
