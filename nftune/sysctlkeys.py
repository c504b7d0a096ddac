"""Which sysctl keys each kernel series has, and which module makes each one, as measured
on real kernels by tools/sysctl-keys (nftune/sysctldata.py). Keys are canonical
(`net/netfilter/nf_conntrack_max`); per-interface directories are patterns
(`net/ipv4/conf/*/rp_filter`), as interfaces come and go.
"""

from __future__ import annotations

from .record import Record

# Directories with one entry per network interface: the interface is a pattern.
PER_INTERFACE = ("net/ipv4/conf/", "net/ipv6/conf/", "net/ipv4/neigh/", "net/ipv6/neigh/",
                 "net/mpls/conf/")
NEAREST_CUTOFF = 0.85
MAX_NEAREST = 50  # a hostile tree of 50,000 unknown keys gets suggestions for the first 50
MAX_LEAF = 100  # the longest measured key's last component is under 50 characters


def series_of(version: str, known: list[str]) -> str | None:
    """The measured series for a kernel release ("6.1.0-57-amd64" -> "6.1"), or the
    nearest one below it; None when none is."""
    try:
        mine = tuple(int(x) for x in version.split("-")[0].split(".")[:2])
    except ValueError:
        return None
    below = [s for s in known if tuple(int(x) for x in s.split(".")) <= mine]
    return max(below, key=lambda s: tuple(int(x) for x in s.split(".")), default=None)


def pattern(key: str) -> str:
    """The key as the data stores it: an interface's directory as `*`."""
    for p in PER_INTERFACE:
        if key.startswith(p):
            name, sep, rest = key[len(p):].partition("/")
            if sep and name not in ("all", "default"):
                return f"{p}*/{rest}"
    return key


class Origin(Record):
    """Where a key comes from on each kernel series that has it."""

    core: tuple[str, ...]  # series whose core kernel has it
    modules: tuple[tuple[str, str], ...]  # (series, module) that makes it there


class KeyData:
    """The measured data, indexed for lookups of many keys."""

    def __init__(self, kernels: tuple[tuple[str, str], ...],
                 keys: dict[str, tuple[str | None, ...]]) -> None:
        names = [name for name, _ in kernels]
        self.kernels = dict(kernels)
        self._core = {k: tuple(n for n, v in zip(names, cols, strict=True) if v == "")
                      for k, cols in keys.items()}
        self._made = {k: tuple((n, v) for n, v in zip(names, cols, strict=True) if v)
                      for k, cols in keys.items()}
        self._series = {n: (frozenset(k for k, cols in keys.items() if cols[i] == ""),
                            {k: m for k, cols in keys.items() if (m := cols[i])})
                        for i, n in enumerate(names)}
        by_dir: dict[str, list[str]] = {}
        for key in keys:
            parent, _, leaf = key.rpartition("/")
            by_dir.setdefault(parent, []).append(leaf)
        self._by_dir = by_dir
        self._asked = 0

    @classmethod
    def load(cls) -> KeyData:
        from .sysctldata import KERNELS, KEYS

        return cls(KERNELS, KEYS)

    def origin(self, key: str) -> Origin | None:
        """None: no measured kernel has the key."""
        p = pattern(key)
        core, made = self._core.get(p, ()), self._made.get(p, ())
        if not core and not made:
            return None
        return Origin(core=core, modules=made)

    def made_by(self) -> dict[str, str]:
        """Every module-made key and its module, on any measured series."""
        return {k: m for k, made in self._made.items() for _, m in made}

    def matching(self, series: str, glob: str) -> tuple[list[str], dict[str, str]]:
        """The keys a sysctl.d glob matches on `series`: the core kernel's, and the
        modules' (key -> module). An interface's directory matches as its pattern."""
        from .sysctl import glob_matches

        core, made = self._series.get(series, (frozenset(), {}))
        return ([k for k in core if glob_matches(glob, k) or glob_matches(pattern(glob), k)],
                {k: m for k, m in made.items()
                 if glob_matches(glob, k) or glob_matches(pattern(glob), k)})

    def nearest(self, key: str) -> str | None:
        """A known key one typo away, in the same directory (the first MAX_NEAREST asks)."""
        self._asked += 1
        if self._asked > MAX_NEAREST:
            return None
        p = pattern(key)
        parent, _, leaf = p.rpartition("/")
        if len(leaf) > MAX_LEAF:  # difflib is quadratic: no known key is this long
            return None
        import difflib  # only a key no kernel has asks

        found = difflib.get_close_matches(leaf, self._by_dir.get(parent, []), 1,
                                          NEAREST_CUTOFF)
        if found:
            return f"{parent}/{found[0]}" if parent else found[0]
        return None
