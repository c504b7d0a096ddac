"""`nftune apply` and `nftune clean`: plan the file changes, carry them out atomically under
a lock, and on the live system make the settings effective at once."""

from __future__ import annotations

import stat

from . import __version__
from .artifacts import (
    SIZING,
    Artifact,
    Layer,
    is_dependent,
    is_ours,
    managed_dirs,
    owned_candidates,
    temp_leftovers,
)
from .config import Config, builtin
from .context import Context
from .errors import EXIT_FAILED, NftuneError
from .fsio import Action, Change, Writer, plan_remove, plan_write
from .kernel import Kernel, ModuleChoice, choose_strict, load_kernels
from .lock import locked
from .record import Record
from .render import Facts, render, render_runtime
from .root import Root
from .rps.write import apply as rps_apply
from .sysctl import CONNTRACK_MAX
from .treewrite import unlink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .conntrack.size import Sizing

SYSTEMD_SYSCTL = ("/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl")


class Plan(Record):
    """What apply decided for a tree: the config, the kernels, the files to write."""

    config: Config
    kernels: list[Kernel]
    choices: list[ModuleChoice]
    facts: Facts
    artifacts: list[Artifact]
    changes: list[Change]
    dry_run: bool = False
    live: bool = False  # written on the running system (not --root, not --dry-run)
    activated: bool = False  # the running system was changed too (modules, sysctls)
    sized: Sized | None = None  # the conntrack table sized for this machine (live only)
    notes: tuple[str, ...] = ()  # warnings of the writer (a state file it would not trust)

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.KEEP]

    def warnings(self, root: Root) -> list[str]:
        if self.kernels:
            return list(self.notes)
        return [f"nftune: warning: no kernel under {root.show('/lib/modules')}; module names "
                "were not checked (a kernel installed later is checked by 'nftune verify')",
                *self.notes]

    def lines(self, root: Root) -> list[str]:
        """Each change (with --dry-run, as a unified diff), then a summary."""
        out = []
        for c in self.changes:
            if not self.dry_run:
                out.append(f"{c.action}: {root.show(c.path)}")
            elif diff := c.diff(root):
                out += diff.removesuffix("\n").split("\n")  # each escaped on its own
        n = len(self.changed)
        verb = "would change" if self.dry_run else "changed"
        out.append(f"apply: {n} file{'s' * (n != 1)} {verb}" if n else "apply: no change")
        if self.sized is not None:
            out += self.sized.lines(root)
        if self.activated:
            out.append("apply: modules loaded and sysctls applied to the running system")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "live": self.live,
                "changes": [{"path": c.path, "action": str(c.action)} for c in self.changes],
                "conntrack": None if self.sized is None else self.sized.to_json()}


class Sized(Record):
    """The conntrack table sized for the running machine: this boot's /run files, and the
    loaded table resized (None: not loaded, or already right)."""

    sizing: Sizing
    changes: list[Change]
    resized: str | None = None  # the old hashsize
    not_resized: str | None = None  # why a loaded table could not be resized
    too_large: str | None = None  # how it exceeds MemoryShare= of this machine's RAM

    def lines(self, root: Root) -> list[str]:
        out = [f"{c.action}: {root.show(c.path)}" for c in self.changes
               if c.action is not Action.KEEP]
        s = self.sizing
        if s.max is not None or s.buckets is not None:
            out.append(f"conntrack: max {s.max if s.max is not None else '(unmanaged)'}, "
                       f"buckets {s.buckets if s.buckets is not None else '(unmanaged)'}: "
                       f"{s.how()}")
        if self.resized is not None:
            out.append(f"conntrack: hashsize {self.resized} -> {s.buckets} (the loaded table)")
        if self.not_resized is not None:
            out.append(f"conntrack: the loaded table keeps its size: {self.not_resized}")
        if self.too_large is not None:
            out.append(f"conntrack: warning: {self.too_large}; lower [Conntrack] Max= or "
                       "Buckets=, or use auto")
        return out

    def to_json(self) -> dict[str, Any]:
        return {**self.sizing.to_json(), "resized_from": self.resized,
                "not_resized": self.not_resized, "too_large": self.too_large,
                "changes": [{"path": c.path, "action": str(c.action)} for c in self.changes]}


class Cleaned(Record):
    """What `clean` removed (or, with --dry-run, would remove)."""

    changes: list[Change]
    dry_run: bool = False
    warnings: tuple[str, ...] = ()  # the writer's (a state file it would not trust)

    def lines(self, root: Root) -> list[str]:
        n = len(self.changes)
        would = "would remove" if self.dry_run else "removed"
        return [*(f"{would}: {root.show(c.path)}" for c in self.changes),
                f"clean: {n} file{'s' * (n != 1)}{' would be' if self.dry_run else ''} removed"]

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "removed": [c.path for c in self.changes]}


def systemd_sysctl(root: Root) -> str:
    """Where this tree has systemd-sysctl; /lib/... works on merged and split /usr alike."""
    for p in SYSTEMD_SYSCTL:
        if root.is_file(p):
            return p
    return SYSTEMD_SYSCTL[1]


def plan(ctx: Context, layer: Layer) -> Plan:
    """Everything is read, checked and rendered before anything is written."""
    root = ctx.root
    # The vendor layer is the package's: built-in defaults only, never the builder's /etc.
    config = ctx.config if layer is Layer.ADMIN else builtin()
    kernels = load_kernels(root)  # unlike verify's, a kernel that cannot be read stops it
    specs = config.modules
    trees: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if layer is Layer.ADMIN and config.auto_load:
        from .autoload import auto_trees, expand

        specs, trees = expand(ctx, specs), tuple(sorted(auto_trees(ctx).items()))
    choices = choose_strict(specs, kernels)
    facts = Facts(__version__, systemd_sysctl(root), tuple(k.version for k in kernels), trees)
    artifacts = render(config, choices, facts, layer)
    changes = [plan_write(root, a.path, a.content, a.mode) for a in artifacts]
    wanted = {a.path for a in artifacts}
    changes += [plan_remove(root, p) for p in owned_candidates(root, layer)
                if p not in wanted and is_ours(root, p)]
    return Plan(config, kernels, choices, facts, artifacts, changes)


def apply(ctx: Context, layer: Layer, *, dry_run: bool = False) -> Plan:
    root = ctx.root
    with locked(root):
        p = plan(ctx, layer)._replace(dry_run=dry_run, live=root.live and not dry_run)
        if not dry_run:
            writer = Writer(root, managed_dirs(layer), remember=layer is Layer.ADMIN)
            writer.remove_temps(temp_leftovers(root, layer))
            writer.commit(p.changed)
            p = p._replace(notes=tuple(writer.warnings))
            if root.live and layer is Layer.ADMIN:
                if p.config.conntrack.managed or root.exists(SIZING):
                    p = p._replace(sized=size_runtime(ctx, p.config))
                activate(ctx, p)
                p = p._replace(activated=True)
        return p


def size_runtime(ctx: Context, config: Config) -> Sized:
    """What nftune-conntrack.service does at boot (and apply on a live system first): size
    the table for this machine into /run, where modprobe.d and sysctl.d are read, so the
    hash size is in effect at nf_conntrack's first load; then resize a table that is
    already loaded. Runtime files of an earlier config that no longer apply go."""
    from .conntrack.machine import machine, machine_or_none, resize
    from .conntrack.record import write_record
    from .conntrack.size import needs_machine, over_share, size

    root = ctx.root
    ct = config.conntrack
    facts = machine(root) if needs_machine(ct) else machine_or_none(root)
    sizing = size(ct, facts)
    wanted = render_runtime(config, sizing, __version__)
    changes = [plan_write(root, a.path, a.content, a.mode) for a in wanted]
    keep = {a.path for a in wanted}
    changes += [plan_remove(root, p) for p in owned_candidates(root, Layer.RUNTIME)
                if p not in keep and is_ours(root, p)]
    Writer(root, managed_dirs(Layer.RUNTIME), remember=False).commit(
        [c for c in changes if c.action is not Action.KEEP])
    if needs_machine(ct):
        write_record(root, sizing)
    elif (st := root.lstat(SIZING)) is not None and not stat.S_ISDIR(st.st_mode):
        try:
            unlink(root, SIZING)  # an earlier decision, no longer nftune's
        except OSError as e:
            raise NftuneError(f"cannot remove: {e.strerror}", path=root.show(SIZING),
                              exit_code=EXIT_FAILED) from None
    resized = why = None
    if sizing.buckets is not None:
        try:
            resized = resize(root, sizing.buckets)
        except NftuneError as e:  # a container's network namespace: the files still apply
            why = f"{e.message}" + (f" ({e.hint})" if e.hint else "")
    large = over_share(sizing, facts, ct.memory_share) if facts is not None else None
    return Sized(sizing, changes, resized, why, large)


def activate(ctx: Context, p: Plan) -> None:
    """Make the configuration effective now, as a boot would: load the modules first
    (modprobe reads the hash size from modprobe.d), then let systemd-sysctl apply sysctl.d
    (all files, so admin overrides still win)."""
    names = [c.name for c in p.choices if c.listed]
    if names:
        ctx.run(["modprobe", "-a", *names])
    keys = [s.key for s in p.config.sysctls]
    if p.sized is not None and p.config.conntrack.max.auto:
        keys.append(CONNTRACK_MAX)
    if keys:
        ctx.run([p.facts.systemd_sysctl, *(f"--prefix=/{k}" for k in keys)])
    _reload_udev(ctx, p.changed)
    _reload_systemd(ctx, p.changed)
    rps_apply(ctx)


def _reload_udev(ctx: Context, changes: list[Change]) -> None:
    """udevd reads rules at start; tell a running one that nftune's rule changed."""
    if any(c.path.endswith(".rules") for c in changes) and \
            ctx.root.exists("/run/udev/control"):
        ctx.run(["udevadm", "control", "--reload"])


def _reload_systemd(ctx: Context, changes: list[Change]) -> None:
    """Let the running manager see a changed drop-in, so its graph matches the files."""
    if any("/systemd/system/" in c.path for c in changes) and ctx.root.systemd_running():
        ctx.run(["systemctl", "daemon-reload"])


def clean(ctx: Context, layer: Layer, *, dry_run: bool = False,
          dependents: bool = False) -> Cleaned:
    """Remove exactly the files nftune wrote (and directories it created, once empty).
    `dependents`: only those that name nftune's units or binary, which the package's
    removal takes with it; the rest, and the directories, stay for purge."""
    root = ctx.root
    with locked(root):
        places = owned_candidates(root, layer)
        if layer is Layer.ADMIN and not dependents:  # and this boot's sizing
            places += owned_candidates(root, Layer.RUNTIME)
        if dependents:
            places = [p for p in places if is_dependent(p)]
        changes = [plan_remove(root, p) for p in places if is_ours(root, p)]
        warnings: tuple[str, ...] = ()
        if not dry_run:
            writer = Writer(root, managed_dirs(layer), remember=layer is Layer.ADMIN)
            warnings = tuple(writer.warnings)
            writer.remove_temps(temp_leftovers(root, layer))
            writer.commit(changes)
            if layer is Layer.ADMIN and not dependents:
                writer.remove_created_dirs()
            elif layer is Layer.VENDOR and not dependents:
                writer.remove_dropin_dirs([c.path for c in changes])
            if root.live:
                _reload_udev(ctx, changes)
                _reload_systemd(ctx, changes)
        return Cleaned(changes, dry_run, warnings)
