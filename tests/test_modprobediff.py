"""nftune's modprobe.d model (nftune/modprobe.py) against kmod itself: random modprobe.d
trees and kernel command lines in a copy of each release's root filesystem, where
`modprobe -c` (run in a chroot) prints every `options` entry in the order the module gets
them. nftune's list must be the same, entry for entry, on every case.

Cases per release and the seed come from the environment (NFTUNE_MODPROBEDIFF_CASES, an
integer; NFTUNE_MODPROBEDIFF_SEED); the seed defaults to one derived from the checked-out
commit, so each change explores new trees.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import commit_seed, require
from nspawn import why_not

from nftune.modprobe import ModprobeD
from nftune.root import Root

SUITES = ("bullseye", "bookworm", "trixie")  # kmod 28 (split /usr), 30, 34
DIRS = ("etc/modprobe.d", "run/modprobe.d", "usr/local/lib/modprobe.d", "usr/lib/modprobe.d",
        "lib/modprobe.d")
NAMES = ("aliases.conf", "nftune.conf", "nftune-conntrack.conf", "a.conf", "z.conf",
         ".hidden.conf", "x.alias", "c.conf~", "notes.txt", "systemd.conf")
LINES = (
    "options nf_conntrack hashsize={n}",
    "options nf-conntrack  hashsize={n} expect_hashsize=2",
    "\toptions\tnf_conntrack\thashsize={n}\t",
    "  options nf_conntrack hashsize={n}",
    "#options nf_conntrack hashsize={n}",
    " # options nf_conntrack hashsize={n}",
    "options nf_conntrack",
    "options nf_conntrack ",
    "options nf_conntrack hashsize={n} \\\n  nf_conntrack_helper=1",
    "options nf_conntrack hash\\size={n}",
    "options q[-x] a=1",
    "options q[-x a=1",
    "options nf_conntrack hashsize={n}\0 junk",
    "install nf_conntrack /sbin/modprobe --ignore-install nf_conntrack",
    "alias nfct nf_conntrack",
    "blacklist nf_conntrack",
    "optionsnf_conntrack hashsize={n}",
    "OPTIONS nf_conntrack hashsize={n}",
    "options nf_conntrack hashsize={n}\r",
    "",
)
CMDLINE = ("quiet", "root=UUID=1234-abcd", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64",
           "nf_conntrack.hashsize={n}", "nf-conntrack.hashsize={n}", "nf_conntrack.x.y=1",
           "ip_vs.conn_tab_bits=12", "a.b", "console=ttyS0", "mod.p=a=b", ".p=1", "m.=1")

require(why_not(), "NFTUNE_REQUIRE_NSPAWN", "modprobe.d differential tests")


def seed() -> int:
    return commit_seed("NFTUNE_MODPROBEDIFF_SEED")


def random_tree(rng: random.Random, rootfs: Path) -> str:
    """Writes one random tree into `rootfs`; returns a description for failures."""
    told = []
    for _ in range(rng.randint(1, 7)):
        d = rootfs / rng.choice(DIRS)
        name = rng.choice(NAMES)
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        if path.is_symlink() or path.exists():
            continue
        kind = rng.choices(("file", "null", "empty", "dir", "dangling", "link"),
                           (8, 1, 1, 1, 1, 1))[0]
        if kind == "file":
            lines = [rng.choice(LINES).format(n=rng.choice((1024, 16384, 65536, 3)))
                     for _ in range(rng.randint(1, 5))]
            text = "\n".join(lines) + rng.choice(("\n", "", "\\"))
            path.write_text(text)
        elif kind == "null":
            path.symlink_to("/dev/null")
        elif kind == "empty":
            path.write_text("")
        elif kind == "dir":
            path.mkdir()
        elif kind == "dangling":
            path.symlink_to("/nonexistent.conf")
        else:
            path.symlink_to("/usr/lib/modprobe.d/aliases.conf")
        told.append(f"{path.relative_to(rootfs)} ({kind})"
                    + (f": {path.read_text()!r}" if kind == "file" else ""))
    words = rng.sample(CMDLINE, rng.randint(0, 4))
    cmdline = " ".join(w.format(n=rng.choice((2048, 7))) for w in words)
    (rootfs / "proc").mkdir(exist_ok=True)
    (rootfs / "proc/cmdline").write_text(cmdline + "\n")
    told.append(f"cmdline: {cmdline!r}")
    return "; ".join(told)


def kmod_says(rootfs: Path) -> list[str]:
    out = subprocess.run(["chroot", str(rootfs), "modprobe", "-c"], capture_output=True,
                         check=True, timeout=30).stdout
    return [line for line in out.decode("utf-8", "surrogateescape").split("\n")
            if line.startswith("options ")]


def nftune_says(rootfs: Path) -> list[str]:
    view = ModprobeD.load(Root(rootfs), cmdline=True)
    return [f"options {o.module} {o.params}" for o in view.options]


@pytest.fixture
def workdir() -> Path:
    base = Path(os.environ.get("NFTUNE_WORK", "/var/tmp"))
    d = Path(subprocess.run(["mktemp", "-d", f"{base}/nftune-modprobediff.XXXXXX"],
                            capture_output=True, text=True, check=True).stdout.strip())
    yield d
    shutil.rmtree(d)


@pytest.mark.parametrize("suite", SUITES)
def test_options_agree_with_modprobe(suite: str, workdir: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from e2e.vm import base_rootfs

    rootfs = workdir / "rootfs"
    subprocess.run(["cp", "-a", "--reflink=auto", str(base_rootfs(suite)), str(rootfs)],
                   check=True)
    pristine = {d: sorted(p.name for p in (rootfs / d).iterdir())
                for d in DIRS if (rootfs / d).is_dir() and not (rootfs / d).is_symlink()}
    n = int(os.environ.get("NFTUNE_MODPROBEDIFF_CASES", "150"))
    rng = random.Random(f"{seed()}-{suite}")
    disagree: list[str] = []
    hashsize_winners = 0
    for i in range(n):
        told = random_tree(rng, rootfs)
        ours, theirs = nftune_says(rootfs), kmod_says(rootfs)
        if ours != theirs:
            disagree.append(f"case {i}: {told}\n  kmod:   {theirs}\n  nftune: {ours}")
        view = ModprobeD.load(Root(rootfs), cmdline=True)
        hashsize_winners += view.winner("nf_conntrack", "hashsize") is not None
        for d, names in pristine.items():  # back to the release's own files
            for p in (rootfs / d).iterdir():
                if p.name not in names:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        for d in DIRS:
            if d not in pristine and (rootfs / d).is_dir() and not (rootfs / d).is_symlink():
                shutil.rmtree(rootfs / d)
    with capsys.disabled():
        print(f"\nmodprobediff {suite}: {n} trees, {len(disagree)} disagreements, "
              f"{hashsize_winners} with a hashsize in effect (seed {seed()})")
    assert not disagree, "\n".join(disagree[:5])
    assert hashsize_winners >= n // 4, "the generator rarely set a hashsize: it proves little"
