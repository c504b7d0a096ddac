"""Unit files read offline, as systemd's system manager would load them.

- The first file of a name on the unit search path wins; a /dev/null symlink masks; a
  symlink to a file of another name is an alias (the unit is loaded under the target's
  name, and all its names' drop-ins and .wants/ directories apply).
- A template instance (foo@bar.service) with no file of its own is loaded from foo@.service;
  drop-ins of both names apply.
- Drop-ins (NAME.d/, dashed prefixes, the type directory) apply in file-name order; for a
  drop-in name, the directory earlier on the search path wins (unit_file_find_dropin_paths).
- Dependency lists only grow: config_parse_unit_deps() ignores an empty assignment, so
  "After=" in a drop-in does not remove an ordering (only a replaced fragment or a mask can).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from . import ini
from .errors import NftuneError
from .record import Record
from .root import DIR, LINK, Root
from .unitnames import _kind, _name_dirs, template_of, valid_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# systemd's system unit search path (lookup_paths_init), highest precedence first; /lib for
# split-usr. Generator directories hold this boot's output, which a built image lacks.
UNIT_DIRS = ("/etc/systemd/system.control", "/run/systemd/system.control",
             "/run/systemd/transient", "/run/systemd/generator.early",
             "/etc/systemd/system", "/etc/systemd/system.attached",
             "/run/systemd/system", "/run/systemd/system.attached",
             "/run/systemd/generator", "/usr/local/lib/systemd/system",
             "/lib/systemd/system", "/usr/lib/systemd/system", "/run/systemd/generator.late")
SPLIT_USR_UNTIL = 256  # v257's manager no longer searches /lib/systemd/system
ALIASABLE = ("service", "socket", "target", "device", "timer", "path")
VERSION_FALLBACK = 252  # bookworm's, when the tree does not say
# Debian "-252.so", Fedora "-256.11-1.fc41.so": the major version leads.
_SHARED = re.compile(r"libsystemd-shared-(\d+)(?:[.-][^/]*)?\.so")
_LIBDIRS = ("/usr/lib/systemd", "/lib/systemd", "/usr/lib/x86_64-linux-gnu/systemd",
            "/usr/lib/aarch64-linux-gnu/systemd", "/usr/lib64/systemd")
# [Unit] keys that name other units; every one of them makes systemd load the other unit.
DEP_KEYS = ("After", "Before", "Wants", "Requires", "Requisite", "BindsTo", "PartOf",
            "Upholds", "Conflicts", "OnFailure", "OnSuccess", "PropagatesReloadTo",
            "ReloadPropagatedFrom", "JoinsNamespaceOf")
MOUNT_KEYS = ("RequiresMountsFor", "WantsMountsFor")
# Type-specific keys the implicit dependencies depend on: (section, key).
_EXEC = ("StandardOutput", "StandardError", "PrivateTmp", "WorkingDirectory",
         "RuntimeDirectory", "StateDirectory", "CacheDirectory", "LogsDirectory",
         "ConfigurationDirectory", "ExecStartPre", "ExecStartPost", "ExecStopPre",
         "ExecStopPost")
TYPE_KEYS = {*((s, k) for s in ("Service", "Socket", "Mount", "Swap") for k in _EXEC),
             ("Socket", "Accept"),
             ("Service", "Type"), ("Service", "BusName"), ("Service", "ExecStart"),
             ("Service", "ExecStop"), ("Service", "Slice"),
             ("Service", "Sockets"), ("Socket", "Service"), ("Socket", "Slice"),
             ("Socket", "ListenStream"), ("Socket", "ListenDatagram"),
             ("Socket", "ListenSequentialPacket"), ("Socket", "ListenFIFO"),
             ("Timer", "Persistent"),
             ("Timer", "Unit"), ("Timer", "OnCalendar"), ("Path", "Unit"),
             ("Mount", "Where"), ("Mount", "What"), ("Mount", "Options"), ("Mount", "Type"),
             ("Mount", "Slice"), ("Automount", "Where"), ("Swap", "What"), ("Swap", "Slice"),
             ("Slice", "Slice")}
SECTION = {"service": "Service", "socket": "Socket", "mount": "Mount", "swap": "Swap",
           "timer": "Timer", "path": "Path", "automount": "Automount", "slice": "Slice"}
BOOLS = {"DefaultDependencies", "PrivateTmp", "Persistent", "Accept"}
LISTS = {"RuntimeDirectory", "StateDirectory", "CacheDirectory", "LogsDirectory",
         "ConfigurationDirectory", "ListenStream", "ListenDatagram", "ListenSequentialPacket",
         "ListenFIFO", "Sockets", "ExecStartPre", "ExecStartPost", "ExecStopPre",
         "ExecStopPost", "ExecStart", "ExecStop"}
_WORDS = re.compile(r"[^ \t\n\r]+")  # systemd splits a list on these four only
_TRUE = ("1", "yes", "y", "true", "t", "on")
_FALSE = ("0", "no", "n", "false", "f", "off")
_MAX_ALIAS = 8  # unit_ids_map_get's limit
def systemd_version(root: Root) -> int:
    """The tree's systemd, from the name of its shared library (libsystemd-shared-252.so)."""
    for d in _LIBDIRS:
        try:
            names = root.listdir(d) if root.is_dir(d) else {}
        except OSError:
            continue
        found = [int(m.group(1)) for n in names if (m := _SHARED.fullmatch(n))]
        if found:
            return max(found)
    return VERSION_FALLBACK


def words(value: str) -> list[str]:
    return _WORDS.findall(value)


EMPTY: Mapping[str, Any] = MappingProxyType({})  # a shared default nobody can change


class Dep(Record):
    """One dependency of a unit, and the line (or rule) that makes it."""

    unit: str
    source: str  # file:line, or the implicit rule


class UnitFile(Record):
    """A unit as systemd would load it from the tree's files."""

    name: str  # the id systemd loads it under (an alias resolves to its target)
    fragment: str | None  # in-tree path of the fragment in effect; None: not found
    masked: bool
    dropins: tuple[str, ...] = ()
    deps: Mapping[str, tuple[Dep, ...]] = EMPTY
    empty: tuple[str, ...] = ()  # file:line of each "After=" or "Before=": they reset nothing
    settings: Mapping[str, tuple[str, str]] = EMPTY  # key: value, file:line
    aliases: tuple[str, ...] = ()
    error: str = ""  # why systemd could not load it (an unreadable file, an alias loop)

    @property
    def found(self) -> bool:
        return self.fragment is not None

    @property
    def loaded(self) -> bool:
        return self.found and not self.masked and not self.error

    @property
    def state(self) -> str:
        """LoadState, as systemd would report it."""
        return ("masked" if self.masked else "error" if self.error else
                "loaded" if self.found else "not-found")

    @property
    def type(self) -> str:
        return self.name.rpartition(".")[2]

    def setting(self, key: str, default: str = "") -> str:
        return self.settings.get(key, (default, ""))[0]

    def yes(self, key: str, default: bool) -> bool:
        v = self.setting(key).lower()
        return v in _TRUE if v else default

    @property
    def default_dependencies(self) -> bool:
        return self.yes("DefaultDependencies", True)


class UnitTree:
    """Units of one tree, loaded on demand and cached: each directory is listed once and
    each file read once."""

    def __init__(self, root: Root, version: int | None = None) -> None:
        self.root = root
        self.version = systemd_version(root) if version is None else version
        self.dirs = self._dirs()
        self._cache: dict[str, UnitFile] = {}
        self._listings: dict[str, dict[str, str]] = {}
        self._aliases: dict[str, list[str]] | None = None
        self._resolved: dict[str, str] = {}
        self._loops: set[str] = set()
        self._entries: dict[str, str | None] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        self._dashed: frozenset[str] | None = None
        self.problems: list[tuple[str, str]] = []  # files that cannot be read: path, why

    def _dirs(self) -> list[str]:
        """The search path, symlinks resolved inside the tree (so /lib -> usr/lib counts
        once, and no listing can leave the tree)."""
        out: list[str] = []
        for d in UNIT_DIRS:
            if d == "/lib/systemd/system" and self.version > SPLIT_USR_UNTIL:
                continue
            real = self.root.chase(d)
            if real not in out and self.root.is_dir(real):
                out.append(real)
        return out

    def _list(self, d: str) -> dict[str, str]:
        """name -> what the entry is (root.LINK, DIR, FILE, OTHER)."""
        if d not in self._listings:
            try:  # hidden entries are skipped, as FOREACH_DIRENT does
                self._listings[d] = {n: k for n, k in self.root.listdir(d).items()
                                     if not n.startswith(".")}
            except OSError:  # unreadable: as systemd, go on without it
                self._listings[d] = {}
        return self._listings[d]

    def name_dirs(self, name: str) -> tuple[str, ...]:
        """_name_dirs(), cutting only where one of the tree's dashed directories (foo-.service.d,
        foo-@x.service.wants, ...) could match."""
        if self._dashed is None:
            prefixes = set()
            for d in self.dirs:
                for n, kind in self._list(d).items():
                    unit = n.rpartition(".")[0]  # foo-.service.d -> foo-.service
                    head = unit.partition("@")[0] if "@" in unit else unit.rpartition(".")[0]
                    if kind == DIR and len(head) > 1 and head.endswith("-"):
                        prefixes.add(head)
            self._dashed = frozenset(prefixes)
        if name not in self._names:
            self._names[name] = _name_dirs(name, self._dashed)
        return self._names[name]

    def names(self) -> list[str]:
        """Every unit name with a file anywhere on the search path."""
        found: set[str] = set()
        for d in self.dirs:
            found.update(n for n in self._list(d) if valid_name(n))
        return sorted(found)

    def _entry(self, name: str) -> str | None:
        if name not in self._entries:
            # Any entry counts, so one that is not a file is reported (file-readable).
            self._entries[name] = next((f"{d}/{name}" for d in self.dirs
                                        if name in self._list(d)), None)
        return self._entries[name]

    def _alias_target(self, name: str) -> str | None:
        """The name an alias symlink stands for (unit_file_resolve_symlink): a link whose
        target lies on the search path, to a unit of the same type and kind."""
        path = self._entry(name)
        if path is None or self._list(path.rpartition("/")[0])[name] != LINK:
            return None
        try:
            target = self.root.readlink(path)
        except OSError:
            return None
        if not target.startswith("/"):
            target = f"{path.rpartition('/')[0]}/{target}"
        target = self.root.chase(target.rpartition("/")[0]) + "/" + target.rpartition("/")[2]
        folder, _, base = target.rpartition("/")
        if folder not in self.dirs or base == name or not valid_name(base):
            return None  # /dev/null, a linked unit file, or a self-link
        kind = name.rpartition(".")[2]
        if kind not in ALIASABLE or base.rpartition(".")[2] != kind:
            return None  # systemd drops an alias it does not allow
        # Same kind of name, and an instance keeps its instance (an instance linked to a
        # template is loaded from it under its own name: not an alias).
        if _kind(name) != _kind(base) or (_kind(name) == "instance" and
                                          name.partition("@")[2] != base.partition("@")[2]):
            return None
        return base

    def resolve(self, name: str) -> str:
        """The id `name` loads under: an alias symlink's target's name, followed (the target
        found again by name, so a higher-precedence file of that name wins)."""
        if name not in self._resolved:
            self._resolved[name] = self._resolve(name)
        return self._resolved[name]

    def _resolve(self, name: str) -> str:
        seen = [name]
        while len(seen) <= _MAX_ALIAS:
            target = self._alias_target(name)
            if target is None and (t := template_of(name)) and self._entry(name) is None:
                # An instance of an aliased template is an instance of the target template.
                tt = self._alias_target(t)
                if tt is not None:
                    target = tt.replace("@.", f"@{name.partition('@')[2].rpartition('.')[0]}.")
            if target is None:
                return name
            if target in seen or len(seen) == _MAX_ALIAS:  # ELOOP: systemd loads neither
                self._loops.add(seen[0])
                return seen[0]
            seen.append(target)
            name = target
        return name

    def aliases(self, uid: str) -> list[str]:
        """Other names on the search path that are aliases of `uid`."""
        if self._aliases is None:
            self._aliases = {}
            for d in self.dirs:
                for n, kind in self._list(d).items():
                    if kind == LINK and valid_name(n) and \
                            self._entry(n) == f"{d}/{n}" and (target := self.resolve(n)) != n:
                        self._aliases.setdefault(target, []).append(n)
        return sorted(self._aliases.get(uid, ()))

    def load(self, name: str) -> UnitFile:
        uid = self.resolve(name)
        if uid not in self._cache:
            self._cache[uid] = self._load(uid)
        return self._cache[uid]

    def _fragment(self, uid: str) -> str | None:
        path = self._entry(uid)
        if path is None and (t := template_of(uid)):
            path = self._entry(t)
        return path

    def _load(self, uid: str) -> UnitFile:
        fragment = self._fragment(uid)
        if fragment is None:
            return UnitFile(uid, None, False)
        if self._list(fragment.rpartition("/")[0]).get(fragment.rpartition("/")[2]) == LINK \
                and self.root.is_masked(fragment):
            return UnitFile(uid, fragment, True)
        if uid in self._loops:
            return UnitFile(uid, fragment, False, error="an alias loop")
        text = self._read(fragment)
        if text is None:
            return UnitFile(uid, fragment, False, error="its file cannot be read")
        if not text:  # null_or_empty(): an empty file masks, as /dev/null does
            return UnitFile(uid, fragment, True)
        aliases = tuple(self.aliases(uid))
        dropins = [p for p in self._in_dirs(uid, aliases, ".d") if p.endswith(".conf")]
        dropins = [p for p in dropins if not self.root.is_masked(p)]
        deps: dict[str, list[Dep]] = {k: [] for k in (*DEP_KEYS, *MOUNT_KEYS)}
        settings: dict[str, tuple[str, str]] = {}
        empty: list[str] = []
        for path, body in ((fragment, text), *((p, self._read(p) or "") for p in dropins)):
            self._parse(uid, path, body, deps, settings, empty)
        for kind, suffix in (("Wants", ".wants"), ("Requires", ".requires"),
                             ("Upholds", ".upholds")):  # process_deps()
            if kind == "Upholds" and self.version < 254:
                continue
            for path in self._in_dirs(uid, aliases, suffix):
                entry = path.rpartition("/")[2]
                folder = path.rpartition("/")[0]
                if self._list(folder).get(entry) != LINK or self.root.is_masked(path):
                    continue
                if _kind(entry) == "template":  # resolve_template()
                    stem = uid.rpartition(".")[0]
                    inst = stem.partition("@")[2] or stem.partition("@")[0]
                    entry = entry.replace("@.", f"@{inst}.")
                deps[kind].append(Dep(entry, path))
        error = ""
        if uid.endswith(".service") and not any(settings.get(k, ("",))[0]
                                                for k in ("ExecStart", "ExecStop")):
            # service_verify(): "Service has no ExecStart=, ExecStop=, or SuccessAction=.
            # Refusing." (SuccessAction= alone is not modelled.)
            error = "it has no ExecStart= left" + (
                f" ({settings['ExecStart'][1]} resets it)" if "ExecStart" in settings else "")
        return UnitFile(uid, fragment, False, tuple(dropins),
                        {k: tuple(v) for k, v in deps.items()}, tuple(empty), settings,
                        aliases, error)

    def _in_dirs(self, uid: str, aliases: tuple[str, ...], suffix: str) -> list[str]:
        """The entries of a unit's drop-in style directories (unit_file_find_dropin_paths):
        for a name, the first directory in search order wins; sorted by name."""
        folders: list[str] = []
        for d in self.dirs:
            folders += [f"{d}/{n}{suffix}" for n in self.name_dirs(uid)]
        for a in aliases:
            for d in self.dirs:
                folders += [f"{d}/{n}{suffix}" for n in self.name_dirs(a)]
        folders += [f"{d}/{uid.rpartition('.')[2]}{suffix}" for d in self.dirs]
        chosen: dict[str, str] = {}
        for f in dict.fromkeys(folders):
            d, _, sub = f.rpartition("/")
            if self._list(d).get(sub) != DIR:
                continue
            for entry in self._list(f):
                chosen.setdefault(entry, f"{f}/{entry}")
        return [chosen[n] for n in sorted(chosen)]

    def _read(self, path: str) -> str | None:
        """A unit file's text; None for one that cannot be read (a FIFO, a loop), which is
        named in `problems`."""
        try:
            return self.root.read_text(path) or ""
        except NftuneError as e:
            self.problems.append((path, e.message))
            return None

    def _parse(self, uid: str, path: str, text: str, deps: dict[str, list[Dep]],
               settings: dict[str, tuple[str, str]], empty: list[str]) -> None:
        own = SECTION.get(uid.rpartition(".")[2])  # other types' sections are ignored
        for e in ini.parse(text, path, strict=False):
            if e.section == "Unit" and e.key in deps:
                origin = str(e.origin)
                names = dict.fromkeys(words(e.value))
                deps[e.key] += [Dep(u, origin) for u in names]
                if not names and e.key in ("After", "Before"):
                    empty.append(f"{e.key}= at {origin}")
            elif (e.section == "Unit" and e.key == "DefaultDependencies") or \
                    (e.section == own and (e.section, e.key) in TYPE_KEYS):
                value = e.value.strip()
                if e.key in BOOLS and value.lower() not in (*_TRUE, *_FALSE):
                    continue  # config_parse_bool() ignores what it cannot parse
                if e.key in LISTS and value and e.key in settings:
                    value = f"{settings[e.key][0]} {value}"  # lists grow; empty resets
                settings[e.key] = (value, str(e.origin))
