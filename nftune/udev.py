"""The safety net: a udev rule per module that re-applies its sysctl subtree when the module
is loaded after systemd-sysctl.service ran (sysctl.d(5) suggests exactly this)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .config import Config
from .glob import match
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


def rules(config: Config, choices: list[ModuleChoice],
          trees: dict[str, tuple[str, ...]] | None = None) -> list[Rule]:
    """A rule for each module that is configured, or whose subtree holds a configured key
    (whoever loads it later: kube-proxy, iptables, nft); `trees`: the subtrees of modules
    Load=auto lists, from the measured data."""
    loaded = {c.name for c in choices}
    out = []
    for module, known in {**MODULE_SYSCTL_TREES, **(trees or {})}.items():
        keyed = any(_under(s.key, t) for s in config.sysctls for t in known)
        if module in loaded or keyed:
            out.append(Rule(module, known))
    return out


# -- udev's rule flow for a module's "add" event ------------------------------------------------
# udev reads every rules file of /etc, /run, /usr/local/lib and /usr/lib/udev/rules.d,
# sorted by name (the first directory's file of a name wins), and applies every line to
# every event: there is no "last_rule" since 2009 (systemd's udev warns "Invalid value for
# OPTIONS key" and ignores it), and a GOTO jumps only to a LABEL later in its own file
# (udev-rules.c, rule_resolve_goto()). What can stop nftune's RUN+= is another line that
# matches the event and assigns RUN: "RUN:=" before it makes the list final, "RUN=" or
# "RUN:=" after it empties the list.

_TOKEN = re.compile(r'[ \t]*(?:,[ \t]*)*([A-Za-z_]+)(\{[^}\n]*\})?[ \t]*(==|!=|\+=|-=|:=|=)[ \t]*'
                    r'[a-z]?"((?:[^"\\\n]|\\.)*)"')
_HAS_RUN = re.compile(r'RUN(\{[^}\n]*\})?[ \t]*:?=[^=]')


class Token(Record):
    key: str
    attr: str
    op: str
    value: str


def tokens(line: str) -> list[Token] | None:
    """A rule line's tokens; None when udev would not parse it."""
    out = []
    at = 0
    end = len(line.rstrip(" \t,"))
    while at < end:
        m = _TOKEN.match(line, at)
        if m is None:
            return None
        out.append(Token(m.group(1), (m.group(2) or "")[1:-1], m.group(3), m.group(4)))
        at = m.end()
    return out


def _match(pattern: str, value: str) -> bool | None:
    """udev's pattern: alternatives with "|", each fnmatch(3); None: not read."""
    hits = [match(value, p) for p in pattern.split("|")]
    return True if any(hits) else None if None in hits else False


def matches(toks: list[Token], module: str) -> bool | None:
    """Whether a line's match keys hold for `module`'s add event; None: a key nftune does
    not evaluate (ATTR, ENV, PROGRAM, TEST, ...)."""
    event = {"ACTION": "add", "SUBSYSTEM": "module", "KERNEL": module,
             "DEVPATH": f"/module/{module}", "SUBSYSTEMS": "module", "KERNELS": module,
             "DRIVER": "", "DRIVERS": ""}
    verdict: bool | None = True
    for t in toks:
        if t.op not in ("==", "!="):
            continue
        if t.key not in event or t.attr:
            verdict = None
            continue
        hit = _match(t.value, event[t.key])
        if hit is None:
            verdict = None
        elif hit != (t.op == "=="):
            return False
    return verdict


def _joined(text: str) -> Iterator[tuple[int, str]]:
    """Rule lines as udev reads them: a trailing backslash continues the line; comments
    and empty lines skipped. The number is the line's first."""
    start, buf = 0, ""
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        start = start or n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        yield start, buf + line
        start, buf = 0, ""
    if buf:
        yield start, buf


class Blocker(Record):
    source: str  # file:line
    certain: bool  # the line surely matches; else nftune cannot evaluate it
    why: str


def run_blocker(files: Iterable[tuple[str, str]], own: str, module: str) -> Blocker | None:
    """The first line that keeps nftune's RUN+= (in the file `own`) from running for
    `module`, a certain one before one nftune cannot evaluate: `files` are (in-tree path,
    text) in udev's order."""
    final: Blocker | None = None
    passed_own = False
    for path, text in files:
        if path == own:
            if final is not None:
                return final
            passed_own = True
            continue
        if not _HAS_RUN.search(text):
            continue
        for n, line in _joined(text):
            if not _HAS_RUN.search(line):
                continue
            toks = tokens(line)
            if toks is None:  # a line udev may read otherwise: it may be one
                if final is None or passed_own:
                    b = Blocker(f"{path}:{n}", False, "a line assigning RUN that nftune "
                                                      "cannot parse")
                    if passed_own:
                        return b
                    final = b
                continue
            runs = [t for t in toks if t.key == "RUN" and t.op in ("=", ":=")]
            if not runs:
                continue
            m = matches(toks, module)
            if m is False:
                continue
            op = runs[-1].op
            where = f"{path}:{n}"
            if passed_own:
                return Blocker(where, m is True, f"RUN{op} after nftune's rule empties the "
                                                   "list it added to")
            if op == ":=" and (final is None or (not final.certain and m is True)):
                final = Blocker(where, m is True, "RUN:= before nftune's rule makes the list "
                                                  "final, so its RUN+= is ignored")
    return None
