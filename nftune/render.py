"""Pure rendering: config + facts in, file contents out. No I/O but reading templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import udev
from .artifacts import NFTUNE_BIN, Artifact, Kind, Layer, path_of
from .config import DEFAULT_SYSCTL_PRIORITY, Config, VerifyConfig
from .kernel import ModuleChoice


@dataclass(frozen=True)
class Facts:
    """What rendering needs to know about the target tree."""

    version: str
    systemd_sysctl: str  # path of systemd-sysctl inside the tree
    kernels: tuple[str, ...]  # versions the modules were checked against


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


def render(config: Config, choices: list[ModuleChoice], facts: Facts,
           layer: Layer) -> list[Artifact]:
    env = _env()
    common = {
        "version": facts.version,
        "sources": ["built-in defaults", *config.sources],
    }

    def one(kind: Kind, template: str, **extra: Any) -> Artifact:
        path = path_of(layer, kind, config.sysctl_priority)
        text = env.get_template(template).render(**common, **extra)
        return Artifact(kind, path, text)

    out = [
        one(Kind.MODULES_LOAD, "modules-load.conf.j2", choices=choices,
            kernels=list(facts.kernels)),
        one(Kind.SYSCTL, "sysctl.conf.j2", sysctls=config.sysctls),
        one(Kind.SYSCTL_ORDER, "sysctl-order.conf.j2"),
    ]
    rules = udev.rules(config, choices)
    if rules:
        out.append(one(Kind.UDEV, "udev.rules.j2", rules=rules,
                       systemd_sysctl=facts.systemd_sysctl))
    # Always rendered: with Mode=off the admin file is empty of rules and masks the vendor's.
    out.append(one(Kind.RPS_UDEV, "rps.rules.j2", mode=config.rps.mode, nftune=NFTUNE_BIN))
    v = config.verify
    if v.interval != VerifyConfig().interval:
        out.append(one(Kind.TIMER_DROPIN, "verify-timer.conf.j2", minutes=v.interval))
    if v.gate:
        out.append(one(Kind.GATE_DROPIN, "kubelet-gate.conf.j2"))
    if v.repair or v.prometheus_dir:
        out.append(one(Kind.VERIFY_DROPIN, "verify-service.conf.j2", repair=v.repair,
                       prometheus_dir=v.prometheus_dir))
    if layer is Layer.ADMIN and config.sysctl_priority != DEFAULT_SYSCTL_PRIORITY:
        out.append(one(Kind.SYSCTL_MASK, "sysctl-mask.conf.j2",
                       vendor=path_of(Layer.VENDOR, Kind.SYSCTL, DEFAULT_SYSCTL_PRIORITY),
                       target=path_of(layer, Kind.SYSCTL, config.sysctl_priority)))
    return out
