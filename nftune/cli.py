"""Verbs and options. Heavy modules are imported inside each verb, so --help and
--version stay fast."""

from __future__ import annotations

import errno
import os
import sys

from . import __version__
from .console import (
    bus_opt,
    complain,
    epilog,
    formatter,
    guard_stdio,
    json_opt,
    root_opt,
    say,
    show,
    silence_stdout,
)
from .errors import EXIT_CHECK_FAILED, EXIT_FAILED, EXIT_OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from .context import BusFactory, Context, Runner
    from .root import Root
    from .run import Completed

BUS_ENV = "NFTUNE_BUS_ADDRESS"  # like --bus-address


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `only`, the one verb's. argparse builds every sub-parser
    up front, and building them all costs more than most verbs' own work."""
    import argparse  # not for --version

    parser = argparse.ArgumentParser(
        prog="nftune",
        description="Load nf_conntrack before systemd-sysctl runs, so "
                    "net.netfilter.nf_conntrack_tcp_be_liberal=1 survives every boot, "
                    "and prove it.",
        **epilog())
    parser.add_argument("--version", action="version", version=f"nftune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (add, _) in VERBS.items():
        if only in (None, name):
            add(verbs)
    return parser


def _context(args: argparse.Namespace, seams: Seams) -> Context:
    """The run's one Context: the tree from --root (or the running system), the bus
    address from --bus-address or the environment, and the seams tests give."""
    from .context import Context
    from .errors import NftuneError
    from .root import Root

    live = getattr(args, "live", False)
    if live and args.root is not None:
        raise NftuneError("--live is for the running system, --root for an image tree",
                          key="--live", hint="give one of them")
    root = seams.host if args.root is None and seams.host is not None else \
        Root.from_arg(args.root, live)
    if root.undecided:
        say(f"nftune: {root.undecided}", err=True)
    address = getattr(args, "bus_address", None) or os.environ.get(BUS_ENV) or None
    return Context(root, runner=seams.runner, bus_factory=seams.bus_factory,
                   bus_address=address)


# -- the verbs: each one's parser, then what it does ---------------------------------------

def _verb_apply(verbs: Any) -> None:
    p = verbs.add_parser("apply", help="render and install the boot files; on a live "
                         "system, also load the modules and apply the sysctls now",
                         **epilog())
    root_opt(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print a unified diff of what would change, change nothing")
    p.add_argument("--vendor", action="store_true",
                   help="write the built-in defaults under /usr/lib (for package builds)")
    json_opt(p)


def cmd_apply(args: argparse.Namespace, seams: Seams) -> int:
    from .apply import apply
    from .artifacts import Layer

    with _context(args, seams) as ctx:
        plan = apply(ctx, Layer.VENDOR if args.vendor else Layer.ADMIN, dry_run=args.dry_run)
        say(*plan.warnings(ctx.root), err=True)
        show(args, plan, ctx.root)
    return EXIT_OK


def _verb_verify(verbs: Any) -> None:
    p = verbs.add_parser("verify", help="check the boot files and, on a live system, "
                         "the running kernel and this boot; one line per check",
                         **epilog())
    root_opt(p)
    bus_opt(p)
    p.add_argument("--check", action="append", metavar="NAME",
                   help="report only this check (repeatable), e.g. --check module-exists "
                        "after a kernel install")
    json_opt(p)
    p.add_argument("--report", action="store_true",
                   help="also write the result to /run/nftune/report.json (schema in nftune(8))")
    p.add_argument("--journal", action="store_true",
                   help="also log one journal entry per failed check, with MESSAGE_ID="
                        "fa14c8a71f284adba5fa982e34c9d8cc and fields NFTUNE_CHECK, "
                        "NFTUNE_CAUSE, NFTUNE_EXPECTED, NFTUNE_ACTUAL")
    p.add_argument("--prometheus", metavar="DIR",
                   help="also write DIR/nftune.prom (atomically) for node_exporter's "
                        "textfile collector")
    p.add_argument("--repair", action="store_true",
                   help="put back each sysctl changed at runtime, and say what changed; one "
                        "changed again within an interval of a repair is 'contested' and "
                        "left alone")
    p.add_argument("--cached", action="store_true",
                   help="take the boot checks' results from this boot's cache "
                        "(/run/nftune/boot-checks.json) when no file they read has changed "
                        "since; the runtime checks always run")
    p.add_argument("--service", action="store_true",
                   help="what nftune-verify.service runs: --cached, --report and --journal, "
                        "plus --repair and --prometheus as [Verify] Repair= and "
                        "PrometheusDirectory= say")
    p.add_argument("--npd", action="store_true",
                   help="node-problem-detector plugin mode: judge the last report "
                        "(/run/nftune/report.json) without checking again; exit 0 OK, 1 a "
                        "problem, 2 unknown; one short line on stdout")
    p.add_argument("--cause", metavar="CAUSE",
                   help="with --npd: a problem only when a check failed with this cause")
    p.add_argument("--max-age", type=float, default=900.0, metavar="SECONDS",
                   help="with --npd: an older report is unknown (default: %(default)s)")


def cmd_npd(args: argparse.Namespace, seams: Seams) -> int:
    import time

    from . import npd, report

    root = _context(args, seams).root
    code, message = npd.verdict(report.read(root), report.boot_id(root), time.time(),
                                args.max_age, args.cause)
    say(message)
    return code


def cmd_verify(args: argparse.Namespace, seams: Seams) -> int:
    if args.npd:
        return cmd_npd(args, seams)
    import time

    from .verify import verify

    started = time.monotonic()
    with _context(args, seams) as ctx:
        report = verify(ctx, cached=args.cached or args.service)
        if args.check:
            report = report.only(args.check)
        if args.repair or args.report or args.journal or args.prometheus or args.service:
            from .publish import Outputs, publish

            # With --json, the results say what was repaired (stdout stays JSON).
            report = publish(ctx, report, Outputs(args.repair, args.report, args.journal,
                                                  args.prometheus, args.service), started,
                             lambda r: say(r.line(), err=args.json))
    show(args, report)
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _verb_chain(verbs: Any) -> None:
    p = verbs.add_parser("chain", help="prove that systemd-modules-load.service runs before "
                         "systemd-sysctl.service, and show UNIT's critical chain",
                         **epilog())
    p.add_argument("unit", nargs="?", default="systemd-sysctl.service", metavar="UNIT",
                   help="the unit whose chain to show (default: %(default)s)")
    root_opt(p)
    bus_opt(p)
    json_opt(p)


def cmd_chain(args: argparse.Namespace, seams: Seams) -> int:
    from .chain import build_chain

    with _context(args, seams) as ctx:
        chain = build_chain(ctx, args.unit, offline=args.root is not None)
    show(args, chain)
    return EXIT_OK if chain.ok else EXIT_CHECK_FAILED


def _verb_clean(verbs: Any) -> None:
    p = verbs.add_parser("clean", help="remove exactly the files nftune wrote",
                         **epilog())
    root_opt(p)
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")
    p.add_argument("--vendor", action="store_true",
                   help="remove the vendor files under /usr/lib instead")
    p.add_argument("--dependents", action="store_true",
                   help="only the files that name nftune's units or binary (the kubelet "
                        "gate, the RPS udev rule, the drop-ins for nftune's units): what "
                        "removing the package does; the files that keep the node right "
                        "without nftune stay")
    json_opt(p)


def cmd_clean(args: argparse.Namespace, seams: Seams) -> int:
    from .apply import clean
    from .artifacts import Layer

    with _context(args, seams) as ctx:
        done = clean(ctx, Layer.VENDOR if args.vendor else Layer.ADMIN, dry_run=args.dry_run,
                     dependents=args.dependents)
        say(*done.warnings, err=True)
        show(args, done, ctx.root)
    return EXIT_OK


def _verb_config(verbs: Any) -> None:
    p = verbs.add_parser("config", help="show the effective configuration and where each "
                         "setting comes from", formatter_class=formatter)
    root_opt(p)
    json_opt(p)


def cmd_config(args: argparse.Namespace, seams: Seams) -> int:
    ctx = _context(args, seams)
    config = ctx.config
    from .autoload import Shown, pulled

    show(args, Shown(config, tuple(pulled(ctx)) if config.auto_load else ()))
    return EXIT_OK


def _verb_rps(verbs: Any) -> None:
    p = verbs.add_parser("rps", help="receive packet steering (RPS/RFS) on this machine's "
                         "NICs: show the masks, or set them",
                         **epilog())
    rps_verbs = p.add_subparsers(dest="rps_verb", metavar="ACTION", required=True)
    q = rps_verbs.add_parser("show", help="per interface and receive queue: the wanted and "
                             "the actual mask, rps_flow_cnt, the NUMA node, and why the "
                             "interface is or is not chosen", formatter_class=formatter)
    root_opt(q)
    json_opt(q)
    q = rps_verbs.add_parser("apply", help="set the masks nftune decides for this machine "
                             "(nftune-rps.service runs this at boot)",
                             formatter_class=formatter)
    root_opt(q)
    q.add_argument("--devpath", metavar="DEVPATH",
                   help="only the interface of this receive queue (udev's $devpath)")
    json_opt(q)


def cmd_rps(args: argparse.Namespace, seams: Seams) -> int:
    ctx = _context(args, seams)
    if args.rps_verb == "apply":
        from .rps.sysfs import interfaces_at
        from .rps.write import apply

        done = apply(ctx, interfaces_at(ctx.root, args.devpath) if args.devpath else None)
        show(args, done, ctx.root)
        return EXIT_OK
    from .rps.view import show as rps_view

    show(args, rps_view(ctx))
    return EXIT_OK


def _verb_conntrack(verbs: Any) -> None:
    p = verbs.add_parser("conntrack", help="the conntrack table's size: what [Conntrack] "
                         "wants on this machine, and what the kernel has", **epilog())
    root_opt(p)
    p.add_argument("--boot", action="store_true",
                   help="size the table for this machine now: write this boot's files "
                        "under /run/modprobe.d and /run/sysctl.d, and resize a loaded table "
                        "(nftune-conntrack.service runs this before systemd-modules-load)")
    json_opt(p)


def cmd_conntrack(args: argparse.Namespace, seams: Seams) -> int:
    from .conntrack.view import show as table_view

    with _context(args, seams) as ctx:
        if args.boot:
            from .apply import size_runtime
            from .errors import NftuneError
            from .lock import locked

            if not ctx.root.live:
                raise NftuneError("--boot sizes the table of the running system",
                                  hint="without --root, on the node itself")
            with locked(ctx.root):
                show(args, size_runtime(ctx, ctx.config), ctx.root)
            return EXIT_OK
        show(args, table_view(ctx))
    return EXIT_OK


# Each verb: what builds its parser (argparse builds only the verb asked), what runs it.
VERBS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace, Seams], int]]] = {
    "apply": (_verb_apply, cmd_apply), "verify": (_verb_verify, cmd_verify),
    "chain": (_verb_chain, cmd_chain), "clean": (_verb_clean, cmd_clean),
    "config": (_verb_config, cmd_config), "rps": (_verb_rps, cmd_rps),
    "conntrack": (_verb_conntrack, cmd_conntrack)}


def _run(argv: list[str], **kw: Any) -> Completed:
    """The one real runner (tests/test_seams.py keeps it the only one), imported when a
    program is first run."""
    from .run import run

    return run(argv, **kw)


class Seams:
    """What a test may stand in for, and nothing else: the program runner, the service
    manager's bus, and the running system's root (a tree that plays the live node)."""

    def __init__(self, runner: Runner | None = None, bus_factory: BusFactory | None = None,
                 host: Root | None = None) -> None:
        self.runner = runner or _run
        self.bus_factory = bus_factory
        self.host = host


# What nftune-verify.service runs, on every node every few minutes: its options are known
# without argparse, which (with gettext and locale) costs the timer run a tenth of its CPU.
SERVICE = ["verify", "--service"]


def service_args() -> Any:
    """`verify --service` as argparse parses it (tests/test_cli.py holds the two equal)."""
    from types import SimpleNamespace

    return SimpleNamespace(debug=False, verb="verify", root=None, live=False, bus_address=None,
                           check=None, json=False, cached=False, report=False, journal=False,
                           prometheus=None, repair=False, service=True, npd=False, cause=None,
                           max_age=900.0)


def main(argv: list[str] | None = None, *, bus_factory: BusFactory | None = None,
         runner: Runner | None = None, host: Root | None = None) -> int:
    """Every way out is an exit code and at most a line or two on stderr: an input error
    is 2 with file:line, a failure 3, never a traceback (unless --debug). The keywords
    are the seams tests use (see Seams); a node passes none."""
    stdout_closed = guard_stdio()
    debug = False
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv == ["--version"] and not stdout_closed:
            # What probes and fleet inventories ask most: answered without argparse.
            sys.stdout.write(f"nftune {__version__}\n")
            sys.stdout.flush()
            return EXIT_OK
        args = service_args() if argv == SERVICE else \
            build_parser(_verb_named(argv)).parse_args(argv)
        debug = args.debug
        if stdout_closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))  # as coreutils: not a word
        code = _dispatch(args, Seams(runner, bus_factory, host))
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
        return code
    except OSError as e:
        if debug:
            raise
        silence_stdout()
        if e.errno == errno.EPIPE:
            return EXIT_FAILED  # the reader went away (| head): quietly, as coreutils do
        if e.errno in (errno.EBADF, errno.ENOSPC) and e.filename is None:
            complain(f"nftune: error: write error: {e.strerror}")
        else:
            complain(f"nftune: error: {e}")  # what no check foresaw: no traceback
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _verb_named(argv: list[str]) -> str | None:
    """The verb, when argv names one: nftune's own options take no value, so it is the
    first word that is not an option. None (build every verb) when an option other than
    --debug comes first (nftune -h verify lists every verb), or for a typo: argparse then
    lists them all."""
    for i, word in enumerate(argv):
        if not word.startswith("-"):
            before = argv[:i]
            return word if word in VERBS and all(a == "--debug" for a in before) \
                else None
    return None


def _dispatch(args: argparse.Namespace, seams: Seams) -> int:
    from .errors import NftuneError

    try:
        return VERBS[args.verb][1](args, seams)
    except NftuneError as e:
        if args.debug:
            raise
        sys.stdout.flush()
        complain(f"nftune: error: {e}", *([f"nftune: hint: {e.hint}"] if e.hint else []))
        return e.exit_code
