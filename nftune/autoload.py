"""[Modules] Load=auto: the modules the node's own sysctl.d keys need. A key that a
module makes is lost at boot unless the module is loaded first; `auto` lists each such
module in nftune's modules-load.d file and safety net, when every installed kernel has it
as a module that kmod would insert, so `apply` cures what the node-sysctl check finds."""

from __future__ import annotations

from .config.model import ModuleSpec
from .record import Record
from .sysctl import display
from .sysctlkeys import KeyData, series_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .config.model import Config
    from .context import Context


class Pulled(Record):
    """A module Load=auto lists, and the sysctl.d lines that need it."""

    module: str
    lines: tuple[str, ...]  # "key (file:line)", in file order


class Shown(Record):
    """`nftune config`: the configuration, and what Load=auto lists and why."""

    config: Config
    pulled: tuple[Pulled, ...]

    def lines(self) -> list[str]:
        out = self.config.lines()
        if self.pulled:
            out += ["", "# Load=auto lists, for these sysctl.d lines:"]
            out += [f"#   {p.module}: {'; '.join(p.lines)}" for p in self.pulled]
        return out

    def to_json(self) -> dict[str, Any]:
        out = self.config.to_json()
        out["auto"] = [{"module": p.module, "for": list(p.lines)} for p in self.pulled]
        return out


def pulled(ctx: Context) -> list[Pulled]:
    """The modules the node's sysctl.d keys need. Each one every installed kernel has as a
    module that kmod would insert (built in: nothing to load; missing, blacklisted or
    refused by an install command in one: listing it would fail or skip the boot's
    modules-load there)."""
    return ctx.memo("autoload-pulled", lambda: _pulled(ctx))


def _pulled(ctx: Context) -> list[Pulled]:
    from .kmod import planners, verdict

    node = ctx.sysctld.node
    kernels = ctx.kernels
    if node is None or not kernels:
        return []
    data = ctx.memo("sysctl-keys", KeyData.load)
    known = sorted(data.kernels)
    managed = {s.key for s in ctx.config.sysctls}
    found: dict[str, list[str]] = {}
    for key, line in node.keys.items():
        if key in managed or line.value is None or (origin := data.origin(key)) is None:
            continue
        made = dict(origin.modules)
        for k in kernels:
            s = series_of(k.version, known)
            module = made.get(s) if s is not None and s not in origin.core else None
            if module is not None and all(kk.has(module) == "module" for kk in kernels):
                where = f"{ctx.root.show(line.file)}:{line.line}"
                found.setdefault(module, []).append(f"{display(key)} ({where})")
                break
    if found:
        root = ctx.root
        refused, kms = ctx.memo("kmod-planners", lambda: planners(root, kernels))
        found = {m: lines for m, lines in found.items() if m not in refused and all(
            verdict(root, km, m, refused).effect == "inserted" for km in kms)}
    return [Pulled(m, tuple(dict.fromkeys(lines))) for m, lines in sorted(found.items())]


def expand(ctx: Context, specs: tuple[ModuleSpec, ...]) -> tuple[ModuleSpec, ...]:
    """Load= with `auto` replaced by the modules it pulls in (at its place in the list)."""
    out: list[ModuleSpec] = []
    for spec in specs:
        if spec.auto:
            out += [ModuleSpec((p.module,), spec.origin) for p in pulled(ctx)]
        else:
            out.append(spec)
    return tuple(out)


def trees(data: KeyData, module: str) -> tuple[str, ...]:
    """The sysctl subtrees `module` makes on any measured kernel, as systemd-sysctl
    --prefix takes them: each key's directory, cut before an interface's `*`, those under
    another left out. A key right under a top directory (`net/nf_conntrack_max`) is its
    own prefix: `net` would re-apply every network key at each load."""
    dirs = set()
    for key, owner in data.made_by().items():
        if owner == module:
            d = key.rpartition("/")[0].split("/*", 1)[0]
            dirs.add(d if "/" in d else key)
    return tuple(sorted(d for d in dirs
                        if not any(d != o and d.startswith(o + "/") for o in dirs)))


def auto_trees(ctx: Context) -> dict[str, tuple[str, ...]]:
    """The safety net's subtrees for the modules Load=auto lists (apply writes them,
    verify's safety-net expects them); a module nftune already knows keeps its own."""
    from .udev import MODULE_SYSCTL_TREES

    if not ctx.config.auto_load:
        return {}
    data = ctx.memo("sysctl-keys", KeyData.load)
    return {p.module: trees(data, p.module) for p in pulled(ctx)
            if p.module not in MODULE_SYSCTL_TREES}
