"""nftune's modprobe.d and kmod models (nftune/modprobe.py, nftune/kmod.py) against kmod
itself: random modprobe.d trees and kernel command lines in a copy of each release's root
filesystem, where, run in a chroot,
- `modprobe -c` prints every entry of each kind (blacklist, install, remove, alias,
  options, softdep) in the order kmod keeps them;
- `modprobe --dry-run --use-blacklist --show-depends NAME` prints the probe list kmod
  would run for NAME as systemd-modules-load asks for it (the blacklist applied): each
  module it inserts, each install command it runs instead, in order, with the release's
  real modules.dep, modules.softdep and modules.alias.
nftune's lists must be the same, entry for entry, on every case.

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

from nftune.kernel import read_kernels
from nftune.kmod import KernelData, Kmod, softdep_lists, verdict
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
# Lines that decide whether a module is inserted, about the modules of real dependency
# chains (nf_conntrack's, nf_nat's, br_netfilter's...), patterns and names kmod cannot find.
MODS = ("nf_conntrack", "nf-conntrack", "nf_defrag_ipv4", "nf_defrag_ipv6", "libcrc32c",
        "nf_nat", "x_tables", "nfnetlink", "bridge", "stp", "llc", "dummy", "veth",
        "nosuchmod", "nf_*", "nf_defrag*", "ip_vs", "crc32c_generic", "fakemod")
ALIASES = ("nfct", "nf_conntrack", "nf_conn*", "nf-nat", "veth", "nf_conn?rack")
PROBE_LINES = (
    "blacklist {m}", "blacklist {m} trailing", "install {m} /bin/true {m}",
    "install {m} /bin/false {m}", "install {m} /sbin/modprobe --ignore-install {m} $CMDLINE_OPTS",
    "install {m} /usr/bin/logger -t x {m}", "install\t{m}\t/bin/true", "install {m}",
    "remove {m} /bin/true", "softdep {m} pre: {m2}", "softdep {m} post: {m2}",
    "softdep {m} pre: {m2} post: {m3}", "softdep {m} {m2}", "softdep {m}",
    "alias {a} {m}", "alias {a}", "options {m} x=1",
)
TARGETS = ("nf_conntrack", "nf_nat", "ip_vs", "br_netfilter", "xt_conntrack", "nft_ct",
           "nfct", "nf-conntrack", "veth", "fakemod", "nosuchmod")
CMDLINE = ("modprobe.blacklist=nf_conntrack,veth", "modprobe.blacklist=nf-nat,dummy",
           "quiet", "root=UUID=1234-abcd", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64",
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
            lines = [rng.choice(LINES if rng.random() < 0.5 else PROBE_LINES).format(
                n=rng.choice((1024, 16384, 65536, 3)), m=rng.choice(MODS),
                m2=rng.choice(MODS), m3=rng.choice(MODS), a=rng.choice(ALIASES))
                for _ in range(rng.randint(1, 6))]
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


KINDS = ("blacklist", "install", "remove", "alias", "options", "softdep")


def _softdep(rest: str) -> str:
    """kmod prints no space before "post:" after a pre: list; compared word by word."""
    return " ".join(rest.replace("post:", " post:").split())


def _lists(value: str) -> str:
    pre, post = softdep_lists(value)
    return " ".join([*(["pre:", *pre] if pre else []), *(["post:", *post] if post else [])])


def kmod_says(rootfs: Path) -> list[str]:
    out = subprocess.run(["chroot", str(rootfs), "modprobe", "-c"], capture_output=True,
                         check=True, timeout=30).stdout
    text = out.decode("utf-8", "surrogateescape").split("# End of configuration files")[0]
    found = []
    for line in text.split("\n"):
        kind, _, rest = line.partition(" ")
        if kind in KINDS:
            found.append(f"{kind} {_softdep(rest) if kind == 'softdep' else rest}")
    return sorted(found, key=lambda line: KINDS.index(line.partition(" ")[0]))


def nftune_says(rootfs: Path) -> list[str]:
    view = ModprobeD.load(Root(rootfs), cmdline=True)
    found = [f"options {o.module} {o.params}" for o in view.options]
    for c in view.commands:
        value = _lists(c.value) if c.kind == "softdep" else c.value
        found.append(f"{c.kind} {c.module}{' ' if value else ''}{value}")
    return sorted(found, key=lambda line: KINDS.index(line.partition(" ")[0]))


def _plan_line(line: str) -> str:
    """One probe step, its module path relative to the kernel's directory (kmod prints
    /lib/modules, nftune the tree's own directory) and white space collapsed."""
    words = line.split()
    if words[:1] == ["insmod"] and len(words) > 1:
        words[1] = words[1].split("/modules/", 1)[-1].split("/", 1)[-1]
    return " ".join(words)


def kmod_plan(rootfs: Path, version: str, name: str) -> list[str]:
    p = subprocess.run(["chroot", str(rootfs), "modprobe", "-S", version, "--dry-run",
                        "--verbose", "--use-blacklist", "--show-depends", name],
                       capture_output=True,
                       timeout=30, check=False)
    return [_plan_line(line) for line in
            p.stdout.decode("utf-8", "surrogateescape").split("\n") if line.strip()]


def nftune_plan(rootfs: Path, version: str, name: str) -> list[str]:
    root = Root(rootfs)
    kernel = next(k for k in read_kernels(root)[0] if k.version == version)
    view = ModprobeD.load(root, cmdline=True)
    km = Kmod(view, KernelData(root, kernel))
    # verify's planner resolves only the softdeps that decide a required step: the same
    # verdict, always.
    lazy = Kmod(view, KernelData(root, kernel), every_step=False)
    assert verdict(root, km, name) == verdict(root, lazy, name), name
    return [_plan_line(s.shown()) for s in km.plan(name).steps
            if s.action != "insmod" or s.what]


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
    [version] = [k.version for k in read_kernels(Root(rootfs))[0]][:1]
    plans = steps = blocked = installs = 0
    for i in range(n):
        told = random_tree(rng, rootfs)
        ours, theirs = nftune_says(rootfs), kmod_says(rootfs)
        if ours != theirs:
            disagree.append(f"case {i}: {told}\n  kmod:   {theirs}\n  nftune: {ours}")
        for name in rng.sample(TARGETS, 2):
            mine, real = nftune_plan(rootfs, version, name), kmod_plan(rootfs, version, name)
            plans += 1
            steps += len(real)
            blocked += not real
            installs += any(line.startswith("install ") for line in real)
            if mine != real:
                disagree.append(f"case {i} probe {name}: {told}\n  kmod:   {real}\n"
                                f"  nftune: {mine}")
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
        print(f"\nmodprobediff {suite}: {n} trees, {plans} probe lists ({steps} steps, "
              f"{blocked} empty, {installs} with an install command), {len(disagree)} "
              f"disagreements, {hashsize_winners} with a hashsize in effect (seed {seed()})")
    assert not disagree, "\n".join(disagree[:5])
    assert blocked >= plans // 20 and installs >= plans // 20, "the generator proves little"
    assert hashsize_winners >= n // 4, "the generator rarely set a hashsize: it proves little"
