"""Unit files read offline, as systemd would load them: the first fragment on the unit search
path wins, a /dev/null symlink masks, and drop-ins (NAME.d/, dashed-prefix and type-level
directories) apply in name order, the first directory winning for a drop-in name.

Dependency lists only grow: systemd's config_parse_unit_deps() ignores an empty assignment,
so "After=" in a drop-in does not remove an ordering (only a replaced fragment or a mask can).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import ini
from .errors import NftuneError
from .root import LINK, Root

# The system unit search path without the runtime-only generator directories, which an
# offline image does not have; highest precedence first (/lib for split-usr).
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/usr/lib/systemd/system", "/lib/systemd/system")
DEPS = ("After", "Before")  # ordering is all the proof needs
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(service|target|socket|mount|path|timer|slice|"
                        r"scope|device|swap|automount)")


@dataclass(frozen=True)
class Dep:
    unit: str
    source: str  # file:line


@dataclass(frozen=True)
class UnitFile:
    name: str
    fragment: str | None  # in-tree path of the fragment in effect; None: not found
    masked: bool
    dropins: tuple[str, ...] = ()
    deps: dict[str, tuple[Dep, ...]] = field(default_factory=dict)
    empty: tuple[str, ...] = ()  # file:line of each "After=" or "Before=": they reset nothing

    @property
    def found(self) -> bool:
        return self.fragment is not None


def _dropin_dirs(name: str) -> list[str]:
    """NAME.d, then dashed prefixes (a-b-.service.d, a-.service.d), then the type (service.d);
    the more specific directory is listed first."""
    stem, _, suffix = name.rpartition(".")
    names = [f"{name}.d"]
    parts = stem.split("-")
    names += [f"{'-'.join(parts[:i])}-.{suffix}.d" for i in range(len(parts) - 1, 0, -1)]
    names.append(f"{suffix}.d")
    return names


class UnitTree:
    """Units of one tree, loaded on demand and cached: each directory is listed once and
    each file read once."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self.dirs = self._dirs()
        self._cache: dict[str, UnitFile] = {}
        self._listings: dict[str, dict[str, str]] = {}
        self.problems: list[tuple[str, str]] = []  # files that cannot be read: path, why

    def _dirs(self) -> list[str]:
        """The search path, symlinks resolved inside the tree (so /lib -> usr/lib counts
        once, and no listing can leave the tree)."""
        out: list[str] = []
        for d in UNIT_DIRS:
            real = self.root.chase(d)
            if real not in out and self.root.is_dir(real):
                out.append(real)
        return out

    def _list(self, d: str) -> dict[str, str]:
        """name -> what the entry is (root.LINK, DIR, FILE, OTHER)."""
        if d not in self._listings:
            try:
                self._listings[d] = self.root.listdir(d)
            except OSError:  # unreadable: as systemd, go on without it
                self._listings[d] = {}
        return self._listings[d]

    def names(self) -> list[str]:
        """Every unit name with a fragment anywhere on the search path."""
        found: set[str] = set()
        for d in self.dirs:
            found.update(n for n in self._list(d) if UNIT_NAME.fullmatch(n))
        return sorted(found)

    def load(self, name: str) -> UnitFile:
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _load(self, name: str) -> UnitFile:
        fragment = next((f"{d}/{name}" for d in self.dirs if name in self._list(d)), None)
        if fragment is None:
            return UnitFile(name, None, False)
        if self._list(fragment.rpartition("/")[0])[name] == LINK and \
                self.root.is_masked(fragment):
            return UnitFile(name, fragment, True)
        dropins = self._dropins(name)
        deps: dict[str, list[Dep]] = {k: [] for k in DEPS}
        empty: list[str] = []
        for path in (fragment, *dropins):
            self._parse(path, deps, empty)
        return UnitFile(name, fragment, False, tuple(dropins),
                        {k: tuple(v) for k, v in deps.items()}, tuple(empty))

    def _dropins(self, name: str) -> list[str]:
        chosen: dict[str, str] = {}
        for sub in _dropin_dirs(name):
            for d in self.dirs:
                if sub not in self._list(d):
                    continue
                for conf in self._list(f"{d}/{sub}"):
                    if conf.endswith(".conf") and conf not in chosen:
                        chosen[conf] = f"{d}/{sub}/{conf}"
        return [chosen[n] for n in sorted(chosen) if not self.root.is_masked(chosen[n])]

    def _read(self, path: str) -> str:
        """A unit file's text; one that cannot be read (a FIFO, a loop) counts as empty,
        as systemd logs it and goes on, and is named in `problems`."""
        try:
            return self.root.read_text(path) or ""
        except NftuneError as e:
            self.problems.append((path, e.message))
            return ""

    def _parse(self, path: str, deps: dict[str, list[Dep]], empty: list[str]) -> None:
        text = self._read(path)
        if "After" not in text and "Before" not in text:
            return  # most units: nothing to parse for the proof
        for e in ini.parse(text, path, strict=False):
            if e.section == "Unit" and e.key in deps:
                deps[e.key] += [Dep(u, str(e.origin)) for u in e.value.split()]
                if not e.value.split():
                    empty.append(f"{e.key}= at {e.origin}")
