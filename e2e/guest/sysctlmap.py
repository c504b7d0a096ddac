#!/usr/bin/env python3
"""Which module makes which sysctl key on the running kernel, measured: /proc/sys listed in
the initial and in a fresh network namespace, then each module named on stdin loaded alone
(with what modprobe loads for it), the keys it added recorded, and every module it loaded
removed again, so the next one starts from the same state. Per-interface directories
(net/ipv4/conf/eth0, net/ipv6/neigh/lo, ...) are listed as patterns (`*`). One line each:

    SYSCTLMAP CORE <key>...          the initial namespace before any module
    SYSCTLMAP NETNS <key>...         a fresh network namespace's net/ keys
    SYSCTLMAP MODULE <name> <how> <key>...   how: loaded, stuck (not removable), failed

With --compare OWNERS (JSON: key -> module, nftune's shipped data for this kernel's
series), the modules on stdin are measured the same way and held to it instead: each key
a module's load adds must be owned there by a module that load inserted, and each key the
data gives the module must appear. One line:

    SYSCTLMAP COMPARE checked=N disagree=M [first=MODULE:KEY:why]

Run in a test guest only: it loads and unloads kernel modules.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

PER_INTERFACE = ("net/ipv4/conf/", "net/ipv6/conf/", "net/ipv4/neigh/", "net/ipv6/neigh/",
                 "net/mpls/conf/")
CLONE_NEWNET = 0x40000000


def interfaces() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def keys(top: str = "/proc/sys") -> set[str]:
    """Every key under `top`, relative to /proc/sys, interface names as `*`."""
    ifaces = interfaces()
    out: set[str] = set()
    for d, dirs, files in os.walk(top):
        # Another file system mounted here (binfmt_misc) holds no sysctls.
        dirs[:] = [x for x in dirs if not os.path.ismount(os.path.join(d, x))]
        rel = os.path.relpath(d, "/proc/sys")
        for f in files:
            key = f if rel == "." else f"{rel}/{f}"
            for p in PER_INTERFACE:
                if key.startswith(p):
                    name, _, rest = key[len(p):].partition("/")
                    if name in ifaces and name not in ("all", "default"):
                        key = f"{p}*/{rest}"
            out.add(key)
    return out


def netns_keys() -> set[str]:
    """net/ keys as a fresh network namespace sees them (a child process's)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) != 0:
            os._exit(1)
        os.write(w, "\n".join(sorted(keys("/proc/sys/net"))).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return set(data.decode().split())


def loaded() -> set[str]:
    with open("/proc/modules") as f:
        return {line.split()[0] for line in f}


def measure(name: str, base: set[str]) -> tuple[str, set[str], set[str], set[str]]:
    """Load `name`, then remove what it loaded: (how, keys added, modules inserted, the
    baseline for the next one)."""
    before = loaded()
    try:
        p = subprocess.run(["modprobe", name], capture_output=True, timeout=60)
        how = "loaded" if p.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        how = "failed"
    added = keys() - base
    inserted = loaded() - before
    subprocess.run(["modprobe", "-r", name], capture_output=True, timeout=60)
    for _ in range(3):  # what it pulled in and modprobe -r left: users first
        for m in sorted(loaded() - before):
            subprocess.run(["rmmod", m], capture_output=True, timeout=60)
    if loaded() - before:
        how = "stuck"
        base = keys()  # what stays is not the next module's
    return how, added, inserted, base


def compare(path: str, names: list[str]) -> None:
    import json

    with open(path) as f:
        owner = json.load(f)  # key -> module, this kernel's series in the shipped data
    base = keys()
    checked = 0
    disagree: list[str] = []
    for name in names:
        if name in loaded():  # loaded already: its keys are no news
            continue
        how, added, inserted, base = measure(name, base)
        if how != "loaded":
            continue
        checked += 1
        for key in sorted(added):
            if owner.get(key) not in inserted:
                disagree.append(f"{name}:{key}:owner={owner.get(key)}")
        for key, m in sorted(owner.items()):
            if m == name and key not in added:
                disagree.append(f"{name}:{key}:missing")
    first = f" first={disagree[0]}" if disagree else ""
    print(f"SYSCTLMAP COMPARE checked={checked} disagree={len(disagree)}{first}", flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--compare"]:
        compare(sys.argv[2], sys.stdin.read().split())
        return
    base = keys()
    print("SYSCTLMAP CORE " + " ".join(sorted(base)), flush=True)
    print("SYSCTLMAP NETNS " + " ".join(sorted(netns_keys())), flush=True)
    for name in sys.stdin.read().split():
        how, added, _, base = measure(name, base)
        print(f"SYSCTLMAP MODULE {name} {how} " + " ".join(sorted(added)), flush=True)


if __name__ == "__main__":
    main()
