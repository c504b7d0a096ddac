#!/usr/bin/env python3
"""The reset storm of kubernetes#74839, reproduced in the guest with the kernel's own IPVS
and conntrack, in kube-proxy's IPVS shape: the service address on a dummy interface,
net.ipv4.vs.conntrack=1, and masquerade toward the backend. A client and a backend live in
network namespaces joined to the host's by veth pairs; traffic never leaves the guest.

For each of N fresh connections through the service, the backend's kernel is made to
send one segment outside the TCP window (crafted with a raw socket, with the connection's
real sequence numbers, read in TCP repair mode). Conntrack marks it INVALID and skips its
NAT, so the host takes it for its own, has no socket for it and answers with a RST to the
backend, which tears the backend's side down: the client's next request is reset. With
nf_conntrack_tcp_be_liberal=1 the segment stays in the connection and is NATed; the
client's stack drops it.

    rstlab.py [--kind ahead|delayed|ack-ahead] [-n N] [--show-rst]

One line of results (connections reset and alive, conntrack's `invalid` counter, the
host's TcpOutRsts, RSTs captured at the backend), and with --show-rst one captured RST.
It sets up and removes everything itself, also on failure, and stops within a bounded time.
"""

from __future__ import annotations

import argparse
import ctypes
import os
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
OFFSETS = {  # (seq, ack) of the injected segment, from the backend's snd_nxt and rcv_nxt
    "ahead": (1 << 28, 0),  # sequence far beyond the client's window
    "delayed": (-100000, 0),  # an old retransmission (kubernetes#74839's own test)
    "ack-ahead": (0, 1 << 28),  # acknowledges data the client never sent
}
SETUP = (
    "ip netns add client", "ip netns add backend",
    "ip link add hc type veth peer name c0 netns client",
    "ip link add hb type veth peer name b0 netns backend",
    "ip addr add 10.0.1.1/24 dev hc", "ip link set hc up",
    "ip addr add 10.0.2.1/24 dev hb", "ip link set hb up",
    "ip -n client addr add 10.0.1.2/24 dev c0", "ip -n client link set c0 up",
    "ip -n client link set lo up", "ip -n client route add default via 10.0.1.1",
    "ip -n backend addr add 10.0.2.2/24 dev b0", "ip -n backend link set b0 up",
    "ip -n backend link set lo up", "ip -n backend route add default via 10.0.2.1",
    "sysctl -qw net.ipv4.ip_forward=1",
    "ip link add kube-ipvs0 type dummy", f"ip addr add {VIP}/32 dev kube-ipvs0",
    "ip link set kube-ipvs0 up",
    "modprobe ip_vs", "sysctl -qw net.ipv4.vs.conntrack=1",
    f"ipvsadm -A -t {VIP}:{PORT} -s rr",
    f"ipvsadm -a -t {VIP}:{PORT} -r {BACKEND}:{BPORT} -m",
    "nft add table ip rstlab",
    "nft 'add chain ip rstlab post { type nat hook postrouting priority srcnat; }'",
    "nft add rule ip rstlab post ip daddr 10.0.2.0/24 masquerade",
)
TEARDOWN = ("ipvsadm -C", "nft delete table ip rstlab", "ip link del kube-ipvs0",
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


def segment(src: str, dst: str, sport: int, dport: int, seq: int, ack: int,
            payload: bytes = b"boom!!!") -> bytes:
    """An IPv4 TCP segment (PSH|ACK) with correct checksums: conntrack must judge its
    window, not its checksum."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % (1 << 32), ack % (1 << 32),
                      5 << 4, 0x18, 502, 0, 0) + payload
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


def lab(n: int, kind: str, show_rst: bool) -> None:
    server = in_ns("backend", socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", BPORT))
    server.listen(64)
    raw = in_ns("backend", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    cap = in_ns("backend", socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    cap.setblocking(False)
    reset = alive = 0
    rsts: list[str] = []
    invalid0, out_rsts0 = counters()
    for _ in range(n):
        client = in_ns("client", socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(3)
        client.connect((VIP, PORT))
        conn, (peer, pport) = server.accept()
        conn.settimeout(3)
        client.sendall(b"ping")
        conn.sendall(conn.recv(16))
        client.recv(16)
        time.sleep(0.1)  # the client's ACK of the reply is in
        snd, rcv = sequence(conn)
        seq_off, ack_off = OFFSETS[kind]
        raw.sendto(segment(BACKEND, peer, BPORT, pport, snd + seq_off, rcv + ack_off),
                   (peer, 0))
        time.sleep(0.3)
        try:
            client.sendall(b"again")
            conn.sendall(conn.recv(16))
            ok = client.recv(16) == b"again"
        except OSError:  # ECONNRESET: "connection reset by peer"
            ok = False
        reset += not ok
        alive += ok
        client.close()
        conn.close()
        rsts += captured_rsts(cap)
    invalid1, out_rsts1 = counters()
    with open("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal") as f:
        liberal = f.read().strip()
    print(f"rstlab kernel={os.uname().release} be_liberal={liberal} kind={kind} "
          f"connections={n} reset={reset} alive={alive} "
          f"conntrack_invalid=+{invalid1 - invalid0} host_TcpOutRsts=+{out_rsts1 - out_rsts0} "
          f"rst_at_backend={len(rsts)}")
    if show_rst and rsts:
        print(f"rstlab captured at the backend: {rsts[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="rstlab.py")
    ap.add_argument("--kind", choices=sorted(OFFSETS), default="ahead")
    ap.add_argument("-n", type=int, default=20, help="connections (default 20)")
    ap.add_argument("--show-rst", action="store_true", help="print one captured RST")
    args = ap.parse_args()
    if not 1 <= args.n <= 1000:
        ap.error("-n is 1 to 1000")
    # Bounded: a connection takes about half a second, under TCG a little more.
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("rstlab: timed out"))
    signal.alarm(30 + 3 * args.n)
    teardown()  # what a killed run left
    try:
        for c in SETUP:
            subprocess.run(c, shell=True, check=True)
        lab(args.n, args.kind, args.show_rst)
    finally:
        teardown()


if __name__ == "__main__":
    main()
