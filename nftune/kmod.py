"""What kmod does when systemd-modules-load.service asks it for a module: the name looked
up, the blacklist, and the probe list with the install commands it runs instead of
inserting. Held to `modprobe --dry-run --show-depends --use-blacklist` in each release's
root by tests/test_modprobediff.py; the rules, from kmod's libkmod-module.c and
libkmod-config.c (kmod 28 to 34) and as measured there:

- a name is looked up in order, the first that finds anything wins: modprobe.d `alias`
  lines (the alias is an fnmatch pattern; every match counts), the module of that name in
  modules.dep, a name with an `install` or `remove` command, modules.alias (patterns), the
  kernel's built-ins.
- systemd-modules-load probes with KMOD_PROBE_APPLY_BLACKLIST: a `blacklist` line naming
  the module itself (exactly, no pattern), or modprobe.blacklist= on the kernel command
  line, stops it; a blacklisted dependency is still inserted.
- the probe list: for each dependency (modules.dep, last first), its softdep `pre:`
  modules, the dependency, its `post:` modules; then the same for the module itself.
  Softdeps come from the first `softdep` line whose pattern matches (modprobe.d and the
  kernel's modules.softdep, sorted by file name together) and are looked up as names;
  they are not required: their failures are ignored.
- a module with an `install` command (the first whose pattern matches) has the command
  run instead of being inserted, unless it has softdeps that resolve: then kmod inserts
  it and ignores the command.
- the first failure of a required module (a dependency or the module) ends the probe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import NftuneError
from .glob import match
from .kernel import Kernel, modname
from .modprobe import CMDLINE, Command, ModprobeD, Options, parse_all, underscores
from .record import Record
from .root import Root

MAX_SOFTDEP_DEPTH = 64  # kmod has none; nftune's recursion needs one
_WILD = re.compile(r"[*?\[]")


class Step(Record):
    """One entry of kmod's probe list, as `modprobe --show-depends` prints it."""

    module: str
    action: str  # "insmod", "install" or "builtin"
    what: str  # the module's in-tree path, the command, or the name
    options: str
    required: bool  # the module asked for or one of its dependencies
    source: str = ""  # the install command's file:line

    def shown(self) -> str:
        """As modprobe prints it (its trailing space included)."""
        if self.action == "builtin":
            return f"builtin {self.module}"
        return f"{self.action} {self.what} {self.options}"


class Plan(Record):
    """What kmod does for one name systemd-modules-load lists, in one kernel."""

    name: str
    kernel: str  # version
    modules: tuple[str, ...]  # what the name resolves to
    steps: tuple[Step, ...]  # every probe list in turn, as modprobe would print them
    blocked: tuple[tuple[str, str], ...] = ()  # (module, the blacklist line's source)
    alias: str = ""  # the alias line's source, when one resolved the name


# -- what an install command does ------------------------------------------------------------

_BIN = ("", "/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/")
_SHELL = set(";&|<>()`$*?[]{}~\n\"'\\")  # a shell line, or quoting: not read further


def command_effect(cmd: str, module: str) -> str:
    """"loads" (it runs `modprobe --ignore-install` of this module), "nothing" (true),
    "fails" (false) or "unknown": nftune never runs it, it only reads it."""
    text = cmd.replace("$CMDLINE_OPTS", "").strip()
    words = text.split()
    if set(text) & _SHELL or not words:
        return "unknown"
    head, _, prog = words[0].rpartition("/")
    where = head + "/" if head else ""
    if where not in _BIN:
        return "unknown"
    if prog in ("true", ":") and (prog == "true" or not where):
        return "nothing"
    if prog == "false":
        return "fails"
    if prog == "modprobe":
        opts = [w for w in words[1:] if w.startswith("-")]
        names = [underscores(w) for w in words[1:] if not w.startswith("-")]
        quiet = {"-q", "--quiet", "-v", "--verbose"}  # -b would skip a blacklisted one
        if ({"-i", "--ignore-install"} & set(opts) and names == [module]
                and set(opts) <= quiet | {"-i", "--ignore-install"}):
            return "loads"
    return "unknown"


def softdep_lists(value: str) -> tuple[list[str], list[str]]:
    """A softdep line's `pre:` and `post:` names (kmod_config_add_softdep(): names before
    either keyword are dropped)."""
    pre: list[str] = []
    post: list[str] = []
    into: list[str] | None = None
    for w in value.replace("\t", " ").split(" "):
        if w == "pre:":
            into = pre
        elif w == "post:":
            into = post
        elif w and into is not None:
            into.append(w)
    return pre, post


# -- one kernel's module data ----------------------------------------------------------------

Entry = tuple[str, tuple[str, ...]]  # a module's path in its kernel's directory, its deps'


class Deps:
    """modules.dep as kernel.py read it; a module's dependencies split when asked for."""

    def __init__(self, lines: Mapping[str, tuple[str, str]]) -> None:
        self.lines = lines

    def get(self, name: str, default: Entry = ("", ())) -> Entry:
        hit = self.lines.get(name)
        return (hit[0], tuple(hit[1].split())) if hit else default

    def __contains__(self, name: object) -> bool:
        return name in self.lines

    def __getitem__(self, name: str) -> Entry:
        if name not in self.lines:
            raise KeyError(name)
        return self.get(name)


class KernelData:
    """modules.dep, modules.softdep, modules.alias and modules.builtin of one kernel, read
    when first needed (modules.alias only when a softdep name needs it)."""

    def __init__(self, root: Root, kernel: Kernel) -> None:
        self.root = root
        self.kernel = kernel
        self._dep: Deps | None = None
        self._exact: dict[str, list[tuple[int, str]]] | None = None
        self._wild: list[tuple[str, str, int, str]] = []
        self.problems: list[tuple[str, str]] = []

    def _read(self, name: str) -> str:
        path = f"{self.kernel.path}/{name}"
        try:
            return (self.root.read_bytes(path) or b"").decode("utf-8", "surrogateescape")
        except NftuneError as e:
            self.problems.append((path, e.message))
            return ""

    @property
    def dep(self) -> Deps:
        if self._dep is None:
            self._dep = Deps(self.kernel.deps)
        return self._dep

    def softdeps(self) -> list[Command]:
        return parse_all(self._read("modules.softdep"), f"{self.kernel.path}/modules.softdep")[1]

    def alias(self, name: str) -> list[str]:
        """The modules modules.alias gives `name`, in the file's order. Its patterns are
        indexed by their literal head, so a lookup tries only those that could match."""
        if self._exact is None:
            self._exact = {}
            for i, line in enumerate(self._read("modules.alias").splitlines()):
                w = line.split()
                if len(w) != 3 or w[0] != "alias" or (a := underscores(w[1])) is None:
                    continue
                head = _WILD.split(a, 1)[0]
                if head == a:
                    self._exact.setdefault(a, []).append((i, modname(w[2])))
                else:
                    self._wild.append((head, a, i, modname(w[2])))
        hits = list(self._exact.get(name, []))
        hits += [(i, m) for head, a, i, m in self._wild
                 if name.startswith(head) and match(name, a)]
        return [m for _, m in sorted(hits)]


# -- the planner -----------------------------------------------------------------------------

class Kmod:
    """kmod's view of modprobe.d and one kernel: lookups and probe lists."""

    def __init__(self, view: ModprobeD, data: KernelData, *, every_step: bool = True) -> None:
        """`every_step`: resolve every softdep into the plan, as modprobe prints it; else
        only what decides the required modules' steps (whether a module with an install
        command has softdeps that resolve): the verdict is the same, and modules.alias is
        read only when that needs it."""
        self.every_step = every_step
        self.data = data
        self.kernel = data.kernel
        cmds = list(view.commands)
        # modules.softdep is read as a configuration file, sorted by name with the others.
        soft = data.softdeps()
        if soft:
            names = [c.file.rpartition("/")[2] for c in cmds]
            at = next((i for i, (c, n) in enumerate(zip(cmds, names, strict=True))
                       if c.file != CMDLINE and n > "modules.softdep"),
                      next((i for i, c in enumerate(cmds) if c.file == CMDLINE), len(cmds)))
            cmds[at:at] = soft
        self.commands = cmds
        self.options = view.options
        self._kinds: dict[str, list[Command]] = {}
        self._looked: dict[str, tuple[list[tuple[str, str]], str]] = {}
        self._opts: dict[str, list[tuple[int, Options]]] = {}
        for i, o in enumerate(self.options):
            self._opts.setdefault(o.module, []).append((i, o))

    def _of(self, kind: str) -> list[Command]:
        if kind not in self._kinds:
            self._kinds[kind] = [c for c in self.commands if c.kind == kind]
        return self._kinds[kind]

    def _matches(self, name: str, c: Command) -> bool:
        """kmod's fnmatch(); a pattern nftune does not read ends the plan: cannot tell."""
        hit = match(name, c.module)
        if hit is None:
            raise NftuneError(f"{c.source}: a pattern nftune does not read ({c.module})")
        return hit

    def lookup(self, name: str) -> tuple[list[tuple[str, str]], str]:
        """kmod_module_new_from_lookup(): the modules a name stands for, each with the name
        it was found under when an alias found it ("" when its own name did: kmod keeps
        one module object per pair, and marks each visited on its own), and the alias
        line's source when modprobe.d's aliases decided."""
        norm = underscores(name) or name
        if norm in self._looked:
            return self._looked[norm]
        self._looked[norm] = found = self._lookup(norm)
        return found

    def _lookup(self, norm: str) -> tuple[list[tuple[str, str]], str]:
        hits = [c for c in self._of("alias") if self._matches(norm, c)]
        if hits:
            # kmod_module_new_from_alias() keeps the line's pattern as the alias; a repeated
            # line counts twice.
            return [(c.value, c.module) for c in hits], hits[0].source
        if norm in self.data.dep:
            return [(norm, "")], ""
        if norm.startswith("symbol:"):
            return [], ""
        if any(c.module == norm for c in self.commands if c.kind in ("install", "remove")):
            return [(norm, "")], ""
        found = [(m, norm) for m in self.data.alias(norm)]
        if found:
            return found, ""
        if norm in self.kernel.builtin:
            return [(norm, "")], ""
        return [], ""

    def blacklisted(self, module: str) -> Command | None:
        return next((c for c in self._of("blacklist") if c.module == module), None)

    def install(self, module: str) -> Command | None:
        return next((c for c in self._of("install") if self._matches(module, c)), None)

    def _softdeps(self, module: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        line = next((c for c in self._of("softdep") if self._matches(module, c)), None)
        if line is None:
            return [], []
        pre, post = softdep_lists(line.value)
        return ([m for w in pre for m in self.lookup(w)[0]],
                [m for w in post for m in self.lookup(w)[0]])

    def _options(self, module: str, under: str) -> str:
        """kmod_module_get_options(): every entry for the module's name, or for the alias
        it was found under, in order; each once (an alias of the module's own name)."""
        mine = self._opts.get(module, []) + (
            self._opts.get(under, []) if under and under != module else [])
        return " ".join(o.params for _, o in sorted(mine, key=lambda x: x[0]))

    def probe(self, module: str, alias: str = "") -> list[Step]:
        """kmod_module_get_probe_list() for a module kmod inserts, as steps."""
        visited: set[tuple[str, str]] = set()
        order: list[tuple[str, str, bool, bool]] = []  # module, alias, required, cmd ignored
        required = {module, *(modname(p) for p in self.data.dep.get(module, ("", ()))[1])}

        def fill_softdep(m: str, under: str, depth: int) -> None:
            if not self.every_step:
                ignored = self.install(m) is not None and any(self._softdeps(m))
                order.append((m, under, m in required, ignored))
                return
            pre, post = self._softdeps(m)
            for p in pre:
                probe_list(p, depth + 1)
            order.append((m, under, m in required, bool(pre or post)))
            for p in post:
                probe_list(p, depth + 1)

        def probe_list(key: tuple[str, str], depth: int) -> None:
            if key in visited:
                return
            if depth > MAX_SOFTDEP_DEPTH:
                raise NftuneError(f"softdeps nest deeper than {MAX_SOFTDEP_DEPTH} modules "
                                  f"below {module}")
            visited.add(key)
            for d in reversed(self.data.dep.get(key[0], ("", ()))[1]):
                fill_softdep(modname(d), "", depth)
            fill_softdep(*key, depth)

        probe_list((module, alias), 0)
        return [self._step(m, under, req, ignored) for m, under, req, ignored in order]

    def _step(self, m: str, under: str, required: bool, ignorecmd: bool) -> Step:
        opts = self._options(m, under)
        cmd = self.install(m)
        if cmd is not None and not ignorecmd:
            return Step(m, "install", cmd.value, opts, required, cmd.source)
        if m in self.data.dep:
            path = self.data.dep[m][0]
            return Step(m, "insmod", f"{self.kernel.path}/{path}", opts, required)
        if m in self.kernel.builtin:
            return Step(m, "builtin", m, opts, required)
        return Step(m, "insmod", "", opts, required)  # not found: kmod fails here

    def plan(self, name: str) -> Plan:
        found, alias = self.lookup(name)
        modules = [m for m, _ in found]
        steps: list[Step] = []
        blocked = []
        for m, under in found:
            if m in self.kernel.builtin and m not in self.data.dep:
                steps.append(Step(m, "builtin", m, "", True))  # systemd: "is built in"
                continue
            if (b := self.blacklisted(m)) is not None:
                blocked.append((m, b.source))
                continue
            steps += self.probe(m, under)
        return Plan(name, self.kernel.version, tuple(modules), tuple(steps), tuple(blocked),
                    alias)


# -- the verdict -----------------------------------------------------------------------------

class Verdict(Record):
    """Whether kmod will insert `module` when systemd-modules-load asks for it."""

    module: str
    kernel: str
    effect: str  # "inserted", "blocked" (it will not be) or "unknown" (nftune cannot tell)
    why: str = ""
    source: str | None = None  # the line that decides
    kind: str = ""  # blacklisted, aliased, install-command, (module|dependency)-missing,
    # opaque (a command nftune cannot read through), unread (softdeps past the bound, a
    # pattern nftune does not read)


def kernel_blacklist(cmdline: str) -> list[str]:
    """module_blacklist= of the running kernel's command line: the kernel refuses these."""
    names: list[str] = []
    for word in cmdline.split():
        if word.startswith("module_blacklist="):
            names += word.partition("=")[2].split(",")
    return names


def planners(root: Root, kernels: list[Kernel]) -> tuple[frozenset[str], list[Kmod]]:
    """What systemd-modules-load's kmod works from: module_blacklist= of the running
    kernel, and a planner per installed kernel over modprobe.d as kmod reads it."""
    view = ModprobeD.load(root, cmdline=root.live)
    return frozenset(kernel_blacklist(view.cmdline)), [Kmod(view, KernelData(root, k))
                                                       for k in kernels]


def verdict(root: Root, km: Kmod, module: str,
            refused: frozenset[str] = frozenset()) -> Verdict:
    """The plan for `module` read for its outcome: each required step in order, as the
    probe runs it, the first that fails ending it. `refused`: module_blacklist= of the
    running kernel, which refuses those modules whoever asks."""
    k = km.kernel.version
    if module in km.kernel.builtin and module not in km.data.dep:
        return Verdict(module, k, "inserted", "built in")
    try:
        plan = km.plan(module)
    except NftuneError as e:
        return Verdict(module, k, "unknown", e.message, None, "unread")
    if not plan.modules:
        return Verdict(module, k, "blocked", f"kmod finds no module of this name in kernel {k}",
                       None, "module-missing")
    if plan.alias and module not in plan.modules:
        return Verdict(module, k, "blocked",
                       f"an alias line makes kmod load {', '.join(plan.modules)} for "
                       f"the name {module}, not the module", plan.alias, "aliased")
    for m, source in plan.blocked:
        if m == module:
            where = "the kernel command line (modprobe.blacklist=)" if source == \
                "the kernel command line" else source
            return Verdict(module, k, "blocked",
                           f"blacklisted by {where}: systemd-modules-load probes with "
                           "the blacklist applied and skips it", source, "blacklisted")
    unknown: Verdict | None = None
    for s in plan.steps:
        if not s.required:
            continue
        role = "the module" if s.module == module else f"its dependency {s.module}"
        if s.module in refused and s.module != module:
            return Verdict(module, k, "blocked",
                           f"module_blacklist= on the kernel command line names {role}: the "
                           f"kernel refuses it, so {module} cannot be inserted",
                           "the kernel command line", "blacklisted")
        if s.action == "install":
            effect = command_effect(s.what, s.module)
            program = s.what.split()[0] if s.what.split() else ""
            if program.startswith("/") and not root.is_file(program):
                effect = "missing"  # the shell cannot run it
            if effect == "loads" and km.lookup(s.module)[0] != [(s.module, "")]:
                effect = "unknown"  # the inner modprobe looks the name up again
            if effect == "loads":
                continue
            if effect == "unknown":
                unknown = unknown or Verdict(
                    module, k, "unknown", f"kmod runs an install command for {role} "
                    f"instead of inserting it, and nftune cannot tell what it does",
                    s.source, "opaque")
                continue
            what = {"nothing": "does nothing", "fails": "fails",
                    "missing": f"fails: {program} is not in the tree"}[effect]
            return Verdict(module, k, "blocked",
                           f"kmod runs the install command for {role} instead of "
                           f"inserting it, and it {what}" + (
                               "" if s.module == module else
                               f", so {module} cannot be inserted"),
                           s.source, "install-command")
        if s.action == "insmod" and (not s.what or "\0" in s.what
                                     or not root.is_file(s.what)):
            return Verdict(module, k, "blocked",
                           f"{role} is not in kernel {k}'s modules"
                           + (f" ({root.show(s.what)} is missing)" if s.what else ""),
                           s.what or None, "dependency-missing")
    if unknown is not None:
        return unknown
    return Verdict(module, k, "inserted", "kmod inserts it and its dependencies")

