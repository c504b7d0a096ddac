"""verify's result as Prometheus metrics, for node_exporter's textfile collector: one
`nftune.prom` in its directory, replaced atomically, with no timestamps (the collector
rules). Rendering is pure; the file goes through fsio's one atomic writer."""

from __future__ import annotations

from . import __version__
from .result import CHECKS, Check, CheckResult, Status
from .root import Root
from .text import escape
from .treewrite import write_atomic

FILE = "nftune.prom"
ORDERING_CHECKS = (Check.ORDERING, Check.BOOT_GRAPH, Check.BOOT_ORDER)


def _label(value: str) -> str:
    """A label value: names from the tree escaped (escape()), then the format's own."""
    return escape(value).replace("\\", "\\\\").replace('"', '\\"')


def _number(text: str | None) -> str | None:
    """A sysctl value as a sample, when it is one number (vectors are left out)."""
    if text is None:
        return None
    try:
        return repr(float(int(text.strip())))
    except (ValueError, OverflowError):
        return None


def render(results: tuple[CheckResult, ...], live: dict[str, str | None],
           wanted: dict[str, str], finished: float, duration: float) -> str:
    """The exposition text. `live` and `wanted`: each managed sysctl's value as sysctl(8)
    names it; `finished`: the Unix time of the run."""
    out: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")

    family("nftune_check_ok", "gauge",
           "1 when the check passed, 0 when it failed (skipped checks are left out); "
           f"check is one of {', '.join(CHECKS)} (see nftune(8)).")
    # One series per check and subject: the first result, or the first failed one.
    series: dict[tuple[str, str], CheckResult] = {}
    for r in results:
        have = series.get((r.check, r.subject))
        if r.status is not Status.SKIPPED and (have is None or (r.failed and not have.failed)):
            series[(r.check, r.subject)] = r
    for r in series.values():
        out.append(f'nftune_check_ok{{check="{_label(r.check)}",subject="{_label(r.subject)}",'
                   f'cause="{r.cause}"}} {0 if r.failed else 1}')
    family("nftune_checks", "gauge", "Checks of the last run, by status.")
    for status in Status:
        n = sum(r.status is status for r in results)
        out.append(f'nftune_checks{{status="{status}"}} {n}')
    family("nftune_sysctl_value", "gauge", "The live value of a sysctl nftune manages.")
    for key, value in live.items():
        if (sample := _number(value)) is not None:
            out.append(f'nftune_sysctl_value{{key="{_label(key)}"}} {sample}')
    family("nftune_sysctl_wanted", "gauge", "The value nftune wants for that sysctl.")
    for key, value in wanted.items():
        if (sample := _number(value)) is not None:
            out.append(f'nftune_sysctl_wanted{{key="{_label(key)}"}} {sample}')
    ordering = [r for r in results if r.check in ORDERING_CHECKS and r.status is not
                Status.SKIPPED]
    family("nftune_ordering_proven", "gauge",
           "1 when systemd-modules-load is proven to run before systemd-sysctl (unit files "
           "and, on a running node, this boot), 0 when not.")
    proven = bool(ordering) and not any(r.failed for r in ordering)
    out.append(f"nftune_ordering_proven {int(proven)}")
    family("nftune_last_run_timestamp_seconds", "gauge", "When the last verify finished.")
    out.append(f"nftune_last_run_timestamp_seconds {finished:.3f}")
    family("nftune_last_run_duration_seconds", "gauge", "How long the last verify took.")
    out.append(f"nftune_last_run_duration_seconds {duration:.6f}")
    family("nftune_info", "gauge", "nftune's version.")
    out.append(f'nftune_info{{version="{_label(__version__)}"}} 1')
    return "\n".join(out) + "\n"


def write(root: Root, directory: str, text: str) -> str:
    """DIR/nftune.prom in the tree, replaced atomically (the temp file is not *.prom)."""
    path = f"{directory.rstrip('/')}/{FILE}"
    write_atomic(root, path, text.encode(), 0o644)
    return root.show(path)
