"""Pure rendering: config + facts in, file contents out. No I/O but reading templates."""

from __future__ import annotations

import re

from . import udev
from .artifacts import FILES, KUBE_UNITS, NFTUNE_BIN, Artifact, Kind, Layer, path_of
from .config import DEFAULT_SYSCTL_PRIORITY, Config, SysctlSpec, builtin
from .ini import Origin
from .kernel import ModuleChoice
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .conntrack.size import Sizing


class Facts(Record):
    """What rendering needs to know about the target tree."""

    version: str
    systemd_sysctl: str  # path of systemd-sysctl inside the tree
    kernels: tuple[str, ...]  # versions the modules were checked against
    # Load=auto's modules: the sysctl subtrees each makes (measured), for the safety net.
    trees: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _env() -> Any:
    import jinja2  # costly; only rendering needs it

    return jinja2.Environment(
        loader=jinja2.PackageLoader("nftune", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# A kernel release as uname(2) gives it (at most 64 bytes); a directory name in the tree
# that is not one never reaches a rendered file, not even a comment.
KERNEL_RELEASE = re.compile(r"[A-Za-z0-9._+~-]{1,64}")
MAX_KERNELS_NAMED = 8  # in the comment; the module names were checked against them all
MAX_SOURCE_LINE = 1024  # far below udev's 16 KiB line limit, whatever the drop-ins


def source_line(sources: tuple[str, ...]) -> str:
    """The header's "Source:" list; with very many drop-ins, a count of them."""
    line = ", ".join(["built-in defaults", *sources])
    if len(line) <= MAX_SOURCE_LINE:
        return line
    main = [s for s in sources if "/nftune.conf.d/" not in s]
    dropins = len(sources) - len(main)
    return ", ".join(["built-in defaults", *main,
                      f"{dropins} drop-ins in /etc/nftune/nftune.conf.d"])


def render(config: Config, choices: list[ModuleChoice], facts: Facts,
           layer: Layer) -> list[Artifact]:
    env = _env()
    common = {"version": facts.version, "source": source_line(config.sources)}
    named = [k for k in facts.kernels if KERNEL_RELEASE.fullmatch(k)][:MAX_KERNELS_NAMED]

    def one(kind: Kind, **extra: Any) -> Artifact:
        path = path_of(layer, kind, config.sysctl_priority)
        text = env.get_template(FILES[kind].template).render(**common, **extra)
        return Artifact(kind, path, text)

    out = [
        one(Kind.MODULES_LOAD, choices=choices, kernels=named,
            unnamed=len(facts.kernels) - len(named)),
        one(Kind.SYSCTL, sysctls=config.sysctls),
        one(Kind.SYSCTL_ORDER),
    ]
    rules = udev.rules(config, choices, dict(facts.trees))
    if rules:
        out.append(one(Kind.UDEV, rules=rules,
                       systemd_sysctl=facts.systemd_sysctl))
    # Always rendered: with Mode=off the admin file is empty of rules and masks the vendor's.
    out.append(one(Kind.RPS_UDEV, mode=config.rps.mode, nftune=NFTUNE_BIN))
    v = config.verify
    if v.interval != builtin().verify.interval:
        out.append(one(Kind.TIMER_DROPIN, minutes=v.interval))
    if v.gate:
        out.append(one(Kind.GATE_DROPIN))
    if v.gate or v.repair or v.prometheus_dir:
        out.append(one(Kind.VERIFY_DROPIN, repair=v.repair,
                       prometheus_dir=v.prometheus_dir,
                       before=KUBE_UNITS if v.gate or v.repair else ""))
    if config.conntrack.managed:
        out += _conntrack(config, one)
    if layer is Layer.ADMIN and config.sysctl_priority != DEFAULT_SYSCTL_PRIORITY:
        out.append(one(Kind.SYSCTL_MASK,
                       vendor=path_of(Layer.VENDOR, Kind.SYSCTL, DEFAULT_SYSCTL_PRIORITY),
                       target=path_of(layer, Kind.SYSCTL, config.sysctl_priority)))
    return out


def _conntrack(config: Config, one: Callable[..., Artifact]) -> list[Artifact]:
    from .conntrack.size import static_buckets  # only a node that sizes the table

    ct = config.conntrack
    # nftune-conntrack.service at every boot: it sizes an auto table for the machine, sets
    # the hash size of a table already there (built in, or loaded from an initramfs) and
    # says when the table would take more than MemoryShare= of that machine's RAM.
    out = [one(Kind.CONNTRACK_DROPIN)]
    if (buckets := static_buckets(ct)) is not None:  # known from the config alone
        out.append(one(Kind.MODPROBE, buckets=buckets, how=_how(config)))
    return out


def _how(config: Config) -> str:
    ct = config.conntrack
    origin = ct.buckets.origin or ct.max.origin
    return f"Buckets={ct.buckets} ({origin})" if origin else f"Buckets={ct.buckets}"


def render_runtime(config: Config, sizing: Sizing, version: str) -> list[Artifact]:
    """This boot's machine-sized files (Layer.RUNTIME): Max=auto's nf_conntrack_max and a
    Buckets=auto that follows it. Empty when nothing depends on the machine."""
    from .conntrack.size import needs_machine
    from .sysctl import CONNTRACK_MAX

    env = _env()
    ct = config.conntrack
    common = {"version": version, "source": source_line(config.sources)}
    out: list[Artifact] = []
    if not needs_machine(ct):
        return out
    how = f"sized for this machine: {sizing.how()}"
    if ct.max.managed and sizing.max is not None:
        spec = SysctlSpec(CONNTRACK_MAX, str(sizing.max), ct.max.origin or Origin("[Conntrack]", 0))
        path = path_of(Layer.RUNTIME, Kind.RUN_SYSCTL, config.sysctl_priority)
        text = env.get_template(FILES[Kind.RUN_SYSCTL].template).render(
            **common, sysctls=[spec])
        out.append(Artifact(Kind.RUN_SYSCTL, path, text))
    if ct.buckets.auto and sizing.buckets is not None:
        path = path_of(Layer.RUNTIME, Kind.RUN_MODPROBE, config.sysctl_priority)
        text = env.get_template(FILES[Kind.RUN_MODPROBE].template).render(
            **common, buckets=sizing.buckets, how=how)
        out.append(Artifact(Kind.RUN_MODPROBE, path, text))
    return out
