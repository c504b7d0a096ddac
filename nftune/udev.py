"""The safety net: a udev rule per module that re-applies its sysctl subtree when the module
is loaded after systemd-sysctl.service ran (sysctl.d(5) suggests exactly this)."""

from __future__ import annotations

from .config import Config
from .kernel import ModuleChoice
from .record import Record

# The sysctl subtrees a module creates when it loads. Re-applying a whole subtree is right
# here: the rule fires only when the module appears, when every key in it has its default.
MODULE_SYSCTL_TREES: dict[str, tuple[str, ...]] = {
    "nf_conntrack": ("net/netfilter", "net/nf_conntrack_max"),
    "ip_vs": ("net/ipv4/vs",),
    "br_netfilter": ("net/bridge",),
}


UDEV_LINE_SIZE = 16384  # udev reads rules with read_line(f, UDEV_LINE_SIZE): longer fails


def long_line(text: str) -> str | None:
    """Why udev would ignore this rules file as a whole: a line of 16 KiB or more; None
    when every line fits."""
    for n, line in enumerate(text.split("\n"), 1):
        if len(line.encode()) >= UDEV_LINE_SIZE:
            return f"line {n} is longer than udev's limit of {UDEV_LINE_SIZE} bytes"
    return None


class Rule(Record):
    """A module whose load re-applies the sysctls under these prefixes."""

    module: str
    prefixes: tuple[str, ...]  # canonical keys, as systemd-sysctl --prefix takes them


def _under(key: str, tree: str) -> bool:
    return key == tree or key.startswith(tree + "/")


def module_for_key(key: str) -> str | None:
    """The module whose subtree holds `key`, when nftune knows it."""
    return next((m for m, trees in MODULE_SYSCTL_TREES.items()
                 if any(_under(key, t) for t in trees)), None)


def rules(config: Config, choices: list[ModuleChoice]) -> list[Rule]:
    """A rule for each module that is configured, or whose subtree holds a configured key
    (whoever loads it later: kube-proxy, iptables, nft)."""
    loaded = {c.name for c in choices}
    out = []
    for module, trees in MODULE_SYSCTL_TREES.items():
        keyed = any(_under(s.key, t) for s in config.sysctls for t in trees)
        if module in loaded or keyed:
            out.append(Rule(module, trees))
    return out

