"""Differential test of nftune's offline unit model: random unit trees around
systemd-modules-load.service and systemd-sysctl.service, each booted in a real systemd
(systemd-nspawn on the release's cached root filesystem, the case's files on an overlay),
where systemd's own loaded graph decides; nftune's offline verdict on the same tree must
agree.

    python tests/unitdiff.py --suite bookworm --cases 100 --seed 7

prints each disagreement with the case's files and the seed, so one case is replayed with
`--seed S --only N`. Exit 0 when all agree, 1 otherwise, 2 when it cannot run here.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nspawn import leader_of

from nftune.ordering import MODULES_LOAD as ML
from nftune.ordering import SYSCTL as SC
from nftune.ordering import FileGraph, LoadedGraph, prove
from nftune.root import Root
from nftune.unitgraph import start_jobs
from nftune.units import UnitTree
from nftune.unitwork import EVERY_CAPABILITY, Facts, body, holds, mounts_of

WORK = Path(os.environ.get("NFTUNE_WORK", "/var/tmp/nftune-unitdiff"))
SETTLE = 20.0  # seconds a boot may take to settle; a stalled one is probed as it is
RUN_DIRS = ("run/systemd/system", "run/systemd/system.control", "run/systemd/transient")
ETC, RUN, USR = "etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system"
# What can stop the work: ExecStart= resets and replacements, conditions and asserts on
# files the case writes, the container's capabilities and command line.
PATHS = ("/etc/nftdiff-file", "/etc/nftdiff-empty", "/etc/nftdiff-dir", "/etc/nftdiff-hidden",
         "/etc/nftdiff-link", "/etc/nftdiff-none", "/etc/modules-load.d", "/usr/lib/nftdiff",
         "/usr/lib/systemd/systemd-sysctl")
CONDITIONS = ("PathExists", "PathIsDirectory", "PathIsSymbolicLink", "DirectoryNotEmpty",
              "FileNotEmpty", "FileIsExecutable")
WORDS = ("quiet", "nftdiff", "/lib/systemd/systemd", "/usr/lib/systemd/systemd", "/sbin/init",
         "systemd.unit")
CAPS = ("CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_ADMIN", "CAP_MAC_ADMIN")
ORDER_POOL = (ML, SC, "sysinit.target", "basic.target", "local-fs.target", "sockets.target",
              "multi-user.target", "network-online.target", "systemd-journald.socket")


@dataclass(frozen=True)
class Link:
    target: str


@dataclass
class Case:
    seed: int
    index: int
    files: dict[str, str | Link] = field(default_factory=dict)

    def show(self) -> str:
        out = []
        for path, v in sorted(self.files.items()):
            if isinstance(v, Link):
                out.append(f"  /{path} -> {v.target}")
            else:
                body = "".join(f"\n      {line}" for line in v.splitlines())
                out.append(f"  /{path}:{body}")
        return "\n".join(out)


# -- random trees ----------------------------------------------------------------------------

def unit_text(body: list[str], service: bool = True, extra: str = "") -> str:
    text = "[Unit]\n" + "".join(f"{line}\n" for line in body)
    if service:
        text += "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
    return text + extra


class Gen:
    """One random tree: fillers of every type near the two units, drop-ins at every level of
    precedence, aliases, a template, masks, mounts, and nftune's own drop-in or not."""

    def __init__(self, rng: random.Random, vendor: dict[str, str]) -> None:
        self.rng = rng
        self.vendor = vendor
        self.files: dict[str, str | Link] = {}
        self.pool = list(ORDER_POOL)
        self.vendor_exec = {u: next((line.partition("=")[2] for line in text.splitlines()
                                     if line.startswith("ExecStart=")), "/bin/true")
                            for u, text in vendor.items()}

    def deps(self, n: int = 2) -> list[str]:
        out = []
        for _ in range(self.rng.randint(0, n)):
            out.append(f"{self.rng.choice(('After', 'Before'))}={self.rng.choice(self.pool)}")
        return out

    def unit(self, body: list[str], service: bool = True, extra: str = "") -> str:
        return unit_text(body, service, extra)

    def where(self) -> str:
        return self.rng.choice((ETC, USR, USR))

    def enable(self, name: str, path: str, targets: tuple[str, ...]) -> None:
        t = self.rng.choice(targets)
        if t:
            kind = "requires" if self.rng.random() < 0.2 else "wants"
            self.files[f"{ETC}/{t}.{kind}/{name}"] = Link(f"/{path}")

    def build(self) -> dict[str, str | Link]:
        r = self.rng
        fillers = [f"nftf{i}.service" for i in range(r.randint(0, 3))]
        target = "nftt.target" if r.random() < 0.3 else None
        alias = "nfta.service" if fillers and r.random() < 0.25 else None
        template = r.random() < 0.2
        socket = r.random() < 0.15
        timer = r.random() < 0.15
        self.pool += fillers + [n for n in (target, alias) if n]
        if template:
            self.pool.append("nftp@a.service")
        if socket:
            self.pool.append("nfts.socket")
        if timer:
            self.pool.append("nftc.timer")
        enable_to = (None, "multi-user.target", "sysinit.target", "basic.target",
                     *([target] if target else []))
        for name in fillers:
            body = (["DefaultDependencies=no"] if r.random() < 0.4 else []) + self.deps()
            path = f"{self.where()}/{name}"
            self.files[path] = self.unit(body)
            self.enable(name, path, enable_to)
            roll = r.random()
            if roll < 0.08:  # masked by the admin, still named by others
                self.files[f"{ETC}/{name}"] = Link("/dev/null")
            elif roll < 0.16 and path.startswith(USR):  # the admin's copy replaces it
                self.files[f"{ETC}/{name}"] = self.unit(self.deps())
        if target:
            body = (["DefaultDependencies=no"] if r.random() < 0.3 else []) + self.deps()
            if fillers and r.random() < 0.5:
                body.append(f"Wants={r.choice(fillers)}")
            path = f"{self.where()}/{target}"
            self.files[path] = self.unit(body, service=False)
            self.enable(target, path, ("multi-user.target",))
        if alias:
            first = f"{ETC}/{fillers[0]}" if f"{ETC}/{fillers[0]}" in self.files \
                else f"/{USR}/{fillers[0]}"
            self.files[f"{ETC}/{alias}"] = Link(first if first.startswith("/") else fillers[0])
        if template:
            self.files[f"{USR}/nftp@.service"] = self.unit(self.deps(1))
            for d in r.sample(("nftp@.service.d", "nftp@a.service.d"), r.randint(0, 2)):
                self.files[f"{r.choice((ETC, USR))}/{d}/{r.choice('ab')}.conf"] = \
                    self.unit(self.deps(1), service=False)
            if r.random() < 0.5:
                self.files[f"{ETC}/multi-user.target.wants/nftp@a.service"] = \
                    Link("/" + f"{USR}/nftp@.service")
        if socket:
            body = (["DefaultDependencies=no"] if r.random() < 0.3 else []) + self.deps(1)
            self.files[f"{USR}/nfts.socket"] = self.unit(
                body, service=False, extra="[Socket]\nListenStream=/run/nfts.sock\n")
            self.files[f"{USR}/nfts.service"] = self.unit([])
            self.enable("nfts.socket", f"{USR}/nfts.socket", ("sockets.target",))
        if timer:
            body = (["DefaultDependencies=no"] if r.random() < 0.3 else []) + self.deps(1)
            self.files[f"{USR}/nftc.timer"] = self.unit(
                body, service=False, extra="[Timer]\nOnCalendar=daily\n")
            self.files[f"{USR}/nftc.service"] = self.unit([])
            self.enable("nftc.timer", f"{USR}/nftc.timer", ("timers.target",))
        self.two_units()
        return self.files

    def two_units(self) -> None:
        r = self.rng
        if r.random() < 0.5:  # nftune's package drop-in
            self.files[f"{USR}/{SC}.d/nftune.conf"] = f"[Unit]\nAfter={ML}\n"
        if r.random() < 0.15:  # an admin's copy of the vendor unit, its After= gone
            text = "".join(line + "\n" for line in self.vendor[SC].splitlines()
                           if not line.startswith("After=") and
                           not (line.startswith("DefaultDependencies") and r.random() < 0.5))
            self.files[f"{ETC}/{SC}"] = text
        for unit, p in ((ML, 0.04), (SC, 0.03)):
            if r.random() < p:
                self.files[f"{ETC}/{unit}"] = Link("/dev/null")
        for _ in range(r.randint(0, 3)):
            unit = r.choice((ML, SC))
            top = r.choice((ETC, RUN, USR, "etc/systemd/system.control",
                            "run/systemd/system.control"))
            path = f"{top}/{unit}.d/{r.choice(('10-a', '50-b', 'nftune'))}.conf"
            roll = r.random()
            if roll < 0.1:
                self.files[path] = Link("/dev/null")
            elif roll < 0.25:
                self.files[path] = f"[Unit]\n{r.choice(('After', 'Before'))}=\n"
            else:
                lines = self.deps(2) or [f"After={r.choice(self.pool)}"]
                if r.random() < 0.15:
                    lines.append(f"RequiresMountsFor=/srv/nftm{r.choice(('', '/x'))}")
                self.files[path] = self.unit(lines, service=False)
        if r.random() < 0.6:
            self.work()
        if r.random() < 0.15:  # dashed-prefix and type drop-ins reach many units at once
            d = r.choice(("systemd-.service.d", "systemd-modules-.service.d", "service.d"))
            body = r.choice(("After=", f"Before={r.choice(self.pool)}", "After=sysinit.target"))
            self.files[f"{r.choice((ETC, USR))}/{d}/20-nft.conf"] = f"[Unit]\n{body}\n"
        if r.random() < 0.1:
            self.files["srv-nftm.mount".join((f"{ETC}/", ""))] = (
                "[Mount]\nWhat=tmpfs\nWhere=/srv/nftm\nType=tmpfs\n")
        if r.random() < 0.05:
            self.files["run/systemd/transient/nftr.service"] = self.unit(self.deps(1))
            self.files[f"run/systemd/transient/{SC}.d/50-t.conf"] = \
                f"[Unit]\nAfter={r.choice(self.pool)}\n"


    def condition(self) -> str:
        r = self.rng
        flags = r.choice(("", "", "|", "!", "|!"))
        kind = r.choice(("Condition", "Condition", "Condition", "Assert"))
        roll = r.random()
        if roll < 0.6:
            return f"{kind}{r.choice(CONDITIONS)}={flags}{r.choice(PATHS)}"
        if roll < 0.72:
            return f"{kind}KernelCommandLine={flags}{r.choice(WORDS)}"
        if roll < 0.84:
            return f"{kind}Capability={flags}{r.choice(CAPS)}"
        if roll < 0.9:
            return f"{kind}Virtualization={flags}container"
        if roll < 0.95:
            return f"{kind}PathExists="  # resets the list
        return f"{kind}Architecture={flags}x86-64"  # nftune does not evaluate it

    def work(self) -> None:
        """A drop-in with ExecStart= lines and conditions for one of the two units, and the
        files its conditions look at."""
        r = self.rng
        unit = r.choice((ML, SC))
        program = self.vendor_exec[unit]
        cond = [self.condition() for _ in range(r.randint(0, 3))]
        execs = []
        if r.random() < 0.5:
            execs.append("ExecStart=")
            for _ in range(r.randint(0, 2)):
                execs.append("ExecStart=" + r.choice((
                    program, f"{program} --prefix=/net", f"@{program} x", "/bin/true",
                    "-/bin/false", f"-{program}", "/bin/true ; /bin/true")))
        text = "[Unit]\n" + "".join(f"{c}\n" for c in cond)
        if execs:
            text += "[Service]\n" + "".join(f"{e}\n" for e in execs)
        top = r.choice((ETC, USR))
        self.files[f"{top}/{unit}.d/60-work.conf"] = text
        self.files["etc/nftdiff-file"] = "x\n"
        self.files["etc/nftdiff-empty"] = ""
        if r.random() < 0.5:
            self.files["etc/nftdiff-dir/a"] = "a\n"
        self.files["etc/nftdiff-hidden/.hidden"] = "x\n"
        if r.random() < 0.5:
            self.files["etc/nftdiff-link"] = Link("/etc/nftdiff-file")


def generate(seed: int, index: int, vendor: dict[str, str]) -> Case:
    rng = random.Random(seed * 100003 + index)
    return Case(seed, index, Gen(rng, vendor).build())


# -- booting a case --------------------------------------------------------------------------

def _write(top: Path, case: Case) -> None:
    # The e2e image's self-test agent must not run here; nor the unit systemd-sysv-generator
    # makes of ipvsadm's init script (Wants= and After=network-online.target for its
    # $network): the model names SysV scripts as not modelled, and is held to what it models.
    (top / ETC).mkdir(parents=True, exist_ok=True)
    for unit in ("nftune-e2e.service", "ipvsadm.service"):
        (top / ETC / unit).symlink_to("/dev/null")
    for rel in RUN_DIRS:
        (top / rel).mkdir(parents=True, exist_ok=True)
    for rel, v in case.files.items():
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.exists():
            p.unlink()
        if isinstance(v, Link):
            p.symlink_to(v.target)
        else:
            p.write_text(v)


@contextmanager
def overlay(base: Path, case: Case, work: Path) -> Iterator[Path]:
    """The base rootfs with the case's files on top; the base is never written."""
    shutil.rmtree(work, ignore_errors=True)
    upper, ow, merged = work / "upper", work / "work", work / "merged"
    for d in (upper, ow, merged):
        d.mkdir(parents=True)
    _write(upper, case)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base},upperdir={upper},workdir={ow}", str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", "-l", str(merged)], check=False)
        shutil.rmtree(work, ignore_errors=True)


def _ctl(leader: int, *args: str) -> str:
    p = subprocess.run(["nsenter", "-t", str(leader), "-m", "-p", "systemctl", *args],
                       capture_output=True, text=True, timeout=30, check=False)
    return p.stdout


@dataclass
class Work:
    """What the booted manager says of the two units' work, and what its conditions saw."""

    show: dict[str, dict[str, list[str]]]  # unit: property: values (ExecStart= repeats)
    facts: Facts


@dataclass
class Booted:
    graph: LoadedGraph | None  # None: the manager gave up (a cyclic boot transaction)
    state: str  # running, degraded, stalled (probed as it was), or died
    work: Work | None = None


def probe_work(leader: int) -> Work:
    text = _ctl(leader, "show", "-p", "Id", "-p", "LoadState", "-p", "ExecStart", "-p",
                "ConditionResult", "-p", "ConditionTimestampMonotonic", "-p", "AssertResult",
                "-p", "AssertTimestampMonotonic", "--", ML, SC)
    show: dict[str, dict[str, list[str]]] = {}
    for block in text.split("\n\n"):
        props: dict[str, list[str]] = {}
        for line in block.splitlines():
            k, _, v = line.partition("=")
            props.setdefault(k, []).append(v)
        if "Id" in props:
            show[props["Id"][0]] = props
    status = Path(f"/proc/{leader}/status").read_text()
    bits = int(next(x for x in status.splitlines() if x.startswith("CapBnd:")).split()[1], 16)
    caps = frozenset(c for i, c in enumerate(sorted(EVERY_CAPABILITY, key=_cap_number))
                     if bits >> i & 1)
    cmdline = Path(f"/proc/{leader}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    # In a container systemd reads its own PID 1's command line; its mounts are read as
    # nftune reads them on a live node (nspawn makes /proc/sys read-only, /proc/sys/net
    # writable with a private network).
    mounts = Path(f"/proc/{leader}/mountinfo").read_text()
    return Work(show, Facts(cmdline.strip(), caps, True, mounts_of(mounts)))


def _cap_number(name: str) -> int:
    from nftune.unitwork import _CAPS

    return _CAPS.index(name.removeprefix("CAP_"))


def boot_and_probe(merged: Path, upper: Path, name: str) -> Booted:
    """Boot the tree, let it settle (bounded), dump the loaded graph, power off at once."""
    log = merged.parent / "console.log"
    binds = [f"--bind={upper / rel}:/{rel}" for rel in RUN_DIRS]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "-b", "-D", str(merged), "-M", name,
             "--register=no", "--keep-unit", "--console=pipe", "--private-network",
             "--capability=CAP_SYS_MODULE", *binds],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline, state, leader = time.monotonic() + SETTLE, "stalled", None
        while time.monotonic() < deadline and proc.poll() is None:
            leader = leader or leader_of(proc.pid)
            if leader:
                s = _ctl(leader, "is-system-running").strip()
                if s in ("running", "degraded", "maintenance"):
                    state = s
                    break
            time.sleep(0.1)
        if leader is None or proc.poll() is not None:
            # systemd 252 in a container exits when it cannot start default.target at all
            # (its transaction is cyclic): no graph to read, counted as such.
            return Booted(None, "died")
        graph = dump(leader)
        try:
            work = probe_work(leader)
        except OSError:  # the container went away after its graph was read
            work = None
        return Booted(graph, state, work)
    finally:
        _stop(proc)


PULLS = ("Wants", "Requires", "Requisite", "BindsTo", "Upholds")


def dump(leader: int) -> LoadedGraph:
    """Every loaded unit's Id, Names, LoadState, After= list and what it pulls in, as the
    manager has them; the units the boot started are those default.target pulls in, by
    systemd's own Wants=, Requires=, … (the same rule nftune applies to its model)."""
    units = []
    for line in _ctl(leader, "list-units", "--all", "--plain", "--no-legend",
                     "--full").splitlines():
        words = line.replace("●", " ").split()
        if words:
            units.append(words[0])
    text = _ctl(leader, "show", "-p", "Id", "-p", "Names", "-p", "LoadState", "-p", "After",
                *(f"--property={k}" for k in PULLS), "--", *units)
    g = LoadedGraph()
    pulled: dict[str, list[str]] = {}
    for block in text.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" not in props:
            continue
        uid = props["Id"]
        g.add_unit(uid, props.get("LoadState", ""), props.get("Names", uid).split(),
                   f"loaded {uid}")
        for other in props.get("After", "").split():
            g.add_after(uid, other, f"After= of {uid} (loaded)")
        pulled[uid] = [o for k in PULLS for o in props.get(k, "").split()]
    loaded = {u for u, st in g.state.items() if st == "loaded"}
    g.set_jobs(start_jobs(loaded, {u: [g.id(o) for o in v] for u, v in pulled.items()},
                          [g.id("default.target")]))
    return g


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """An immediate poweroff (SIGRTMIN+14 to the container's systemd); killed if it hangs."""
    if proc.poll() is None:
        leader = leader_of(proc.pid)
        if leader:
            with suppress(ProcessLookupError):
                os.kill(leader, signal.SIGRTMIN + 14)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- verdicts --------------------------------------------------------------------------------

def verdict(graph: LoadedGraph) -> str:
    return str(prove(graph).cause)


@dataclass
class Outcome:
    case: Case
    systemd: str
    nftune: str
    state: str
    detail: str = ""
    work: str = ""  # where the work's model and systemd disagree
    compared: int = 0  # ExecStart= lists and condition results compared

    @property
    def agree(self) -> bool:
        # A boot whose manager gave up, or had not finished, has no graph to compare.
        return self.systemd in (self.nftune, "boot-died", "boot-stalled") and not self.work


def compare_work(root: Root, tree: UnitTree, work: Work) -> tuple[str, int]:
    """The model's effective ExecStart= and condition results against `systemctl show`."""
    bad = []
    n = 0
    for unit in (ML, SC):
        u = tree.load(unit)
        props = work.show.get(unit, {})
        if not u.loaded or props.get("LoadState", [""])[0] != "loaded":
            continue
        b = body(root, u)
        mine = [f"{c.path} {' '.join(c.argv)}" for c in b.exec_start]
        theirs = []
        for v in props.get("ExecStart", []):
            if v.startswith("{"):
                path = v.split("path=", 1)[1].split(" ;", 1)[0]
                argv = v.split("argv[]=", 1)[1].split(" ;", 1)[0]
                theirs.append(f"{path} {argv}")
        n += 1
        if mine != theirs:
            bad.append(f"  {unit} ExecStart: systemd {theirs}, nftune {mine}")
        for kind, conds in (("Condition", b.conditions), ("Assert", b.asserts)):
            if props.get(f"{kind}TimestampMonotonic", ["0"])[0] in ("0", ""):
                continue  # never checked (the unit had no start job)
            o = holds(root, conds, work.facts, tree.version)
            if o.value is None:
                continue
            n += 1
            real = props.get(f"{kind}Result", [""])[0] == "yes"
            if o.value != real:
                bad.append(f"  {unit} {kind}Result: systemd {real}, nftune {o.value} "
                           f"({', '.join(map(str, conds))})")
    return "\n".join(bad), n


def run_case(base: Path, case: Case, suite: str) -> Outcome:
    work = WORK / f"{suite}-{case.seed}-{case.index}"
    with overlay(base, case, work) as merged:
        model = FileGraph(UnitTree(Root(str(merged))))
        mine = prove(model)
        booted = boot_and_probe(merged, work / "upper",
                                f"nftdiff{os.getpid()}-{case.index}")
        if booted.graph is None:
            return Outcome(case, "boot-died", str(mine.cause), booted.state)
        if booted.state == "stalled":  # probed mid-boot: units may be gone or not yet there
            return Outcome(case, "boot-stalled", str(mine.cause), booted.state)
        real = prove(booted.graph)
        detail = ""
        if real.cause != mine.cause:
            detail = (f"  systemd: {real.cause}: {real.reason}\n"
                      f"  nftune:  {mine.cause}: {mine.reason}\n")
        work, n = ("", 0) if booted.work is None else \
            compare_work(Root(str(merged)), model.tree, booted.work)
        if work:
            detail += work + "\n"
        return Outcome(case, str(real.cause), str(mine.cause), booted.state, detail, work, n)


def vendor_units(base: Path) -> dict[str, str]:
    return {u: (base / USR / u).read_text() if (base / USR / u).exists()
            else (base / "lib/systemd/system" / u).read_text() for u in (ML, SC)}


def rootfs(suite: str) -> Path:
    from e2e.vm import base_rootfs
    return base_rootfs(suite)


@dataclass
class Report:
    summary: str
    disagreements: list[str]
    tally: dict[str, int]  # systemd's verdicts (boot-died: no graph to compare)
    work: int = 0  # ExecStart= lists and condition results compared


def run(suite: str, count: int, seed: int, only: int | None = None) -> Report:
    base = rootfs(suite)
    vendor = vendor_units(base)
    tally: dict[str, int] = {}
    states: dict[str, int] = {}
    bad = []
    work = 0
    t0 = time.monotonic()
    indexes = [only] if only is not None else list(range(count))
    for i in indexes:
        o = run_case(base, generate(seed, i, vendor), suite)
        tally[o.systemd] = tally.get(o.systemd, 0) + 1
        work += o.compared
        states[o.state] = states.get(o.state, 0) + 1
        if not o.agree:
            text = (f"DISAGREE {suite} seed {seed} case {i}: systemd {o.systemd}, nftune "
                    f"{o.nftune} (replay: python tests/unitdiff.py --suite {suite} --seed "
                    f"{seed} --only {i})\n{o.detail}{o.case.show()}\n")
            print(text, flush=True)
            bad.append(text)
    summary = (f"unitdiff {suite}: {len(indexes) - len(bad)}/{len(indexes)} agree (seed {seed}, "
               f"{time.monotonic() - t0:.0f} s); systemd's verdicts: "
               + ", ".join(f"{v} {c}" for v, c in sorted(tally.items()))
               + "; boots: " + ", ".join(f"{s} {c}" for s, c in sorted(states.items()))
               + f"; {work} ExecStart= lists and condition results compared")
    return Report(summary, bad, tally, work)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--suite", default="bookworm", choices=("bullseye", "bookworm", "trixie"))
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--only", type=int, help="run only this case index")
    a = ap.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("systemd-nspawn") is None:
        print("unitdiff: needs root and systemd-nspawn", file=sys.stderr)
        return 2
    report = run(a.suite, a.cases, a.seed, a.only)
    print(report.summary)
    return 1 if report.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
