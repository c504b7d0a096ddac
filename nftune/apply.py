"""`nftune apply` and `nftune clean`: plan the file changes, carry them out atomically under
a lock, and on the live system make the settings effective at once."""

from __future__ import annotations

from . import __version__, rps
from .artifacts import Artifact, Layer, managed_dirs, owned_candidates, temp_leftovers
from .config import Config, load, parse
from .fsio import Action, Change, Writer, is_ours, locked, plan_remove, plan_write
from .kernel import Kernel, ModuleChoice, load_kernels, resolve
from .record import Record
from .render import Facts, render
from .root import Root
from .run import run

SYSTEMD_SYSCTL = ("/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl")


class Plan(Record):
    """What apply decided for a tree: the config, the kernels, the files to write."""

    config: Config
    kernels: list[Kernel]
    choices: list[ModuleChoice]
    facts: Facts
    artifacts: list[Artifact]
    changes: list[Change]

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.KEEP]


def systemd_sysctl(root: Root) -> str:
    """Where this tree has systemd-sysctl; /lib/... works on merged and split /usr alike."""
    for p in SYSTEMD_SYSCTL:
        if root.is_file(p):
            return p
    return SYSTEMD_SYSCTL[1]


def plan(root: Root, layer: Layer) -> Plan:
    """Everything is read, checked and rendered before anything is written."""
    # The vendor layer is the package's: built-in defaults only, never the builder's /etc.
    config = load(root) if layer is Layer.ADMIN else parse([])
    kernels = load_kernels(root)
    choices = resolve(config.modules, kernels)
    facts = Facts(__version__, systemd_sysctl(root), tuple(k.version for k in kernels))
    artifacts = render(config, choices, facts, layer)
    changes = [plan_write(root, a.path, a.content, a.mode) for a in artifacts]
    wanted = {a.path for a in artifacts}
    changes += [plan_remove(root, p) for p in owned_candidates(root, layer)
                if p not in wanted and is_ours(root, p)]
    return Plan(config, kernels, choices, facts, artifacts, changes)


def apply(root: Root, layer: Layer, *, dry_run: bool = False) -> Plan:
    with locked(root):
        p = plan(root, layer)
        if not dry_run:
            writer = Writer(root, managed_dirs(layer), remember=layer is Layer.ADMIN)
            writer.remove_temps(temp_leftovers(root, layer))
            writer.commit(p.changed)
            if root.live and layer is Layer.ADMIN:
                activate(root, p)
        return p


def activate(root: Root, p: Plan) -> None:
    """Make the configuration effective now, as a boot would: load the modules first,
    then let systemd-sysctl apply sysctl.d (all files, so admin overrides still win)."""
    names = [c.name for c in p.choices if c.listed]
    if names:
        run(["modprobe", "-a", *names])
    if p.config.sysctls:
        run([p.facts.systemd_sysctl, *(f"--prefix=/{s.key}" for s in p.config.sysctls)])
    _reload_udev(root, p.changed)
    _reload_systemd(root, p.changed)
    rps.apply(root, p.config)


def _reload_udev(root: Root, changes: list[Change]) -> None:
    """udevd reads rules at start; tell a running one that nftune's rule changed."""
    if any(c.path.endswith(".rules") for c in changes) and root.exists("/run/udev/control"):
        run(["udevadm", "control", "--reload"])


def _reload_systemd(root: Root, changes: list[Change]) -> None:
    """Let the running manager see a changed drop-in, so its graph matches the files."""
    if any("/systemd/system/" in c.path for c in changes) and root.systemd_running():
        run(["systemctl", "daemon-reload"])


def clean(root: Root, layer: Layer, *, dry_run: bool = False) -> list[Change]:
    """Remove exactly the files nftune wrote (and directories it created, once empty)."""
    with locked(root):
        changes = [plan_remove(root, p) for p in owned_candidates(root, layer)
                   if is_ours(root, p)]
        if not dry_run:
            writer = Writer(root, managed_dirs(layer), remember=layer is Layer.ADMIN)
            writer.remove_temps(temp_leftovers(root, layer))
            writer.commit(changes)
            if layer is Layer.ADMIN:
                writer.remove_created_dirs()
            if root.live:
                _reload_udev(root, changes)
                _reload_systemd(root, changes)
        return changes
