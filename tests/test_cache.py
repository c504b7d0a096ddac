"""The boot checks' cache (nftune/cache.py): a timer run takes them only when nothing they
read has changed, and never from a cache it cannot trust."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Commands, applied, context, write
from fakes import healthy

from nftune.artifacts import BOOT_CHECKS
from nftune.cli import main
from nftune.result import CheckResult
from nftune.root import Root
from nftune.specs import BOOT_CHECKS as BOOT
from nftune.verify import Findings, verify

KEY = "net/netfilter/nf_conntrack_tcp_be_liberal"
BOOT_ID = "5b2f0c1e-6a8b-4c7d-9e0f-112233445566"


@pytest.fixture
def node(tree: Path) -> Root:
    """A right node, live, with a boot ID and an uptime."""
    root = applied(tree, values={KEY: "1"})
    write(tree, "/proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
    write(tree, "/proc/uptime", "60.00 100.00\n")
    return root


def journal() -> Commands:
    commands = Commands()
    commands.allow("journalctl")  # this boot's messages: none
    return commands


def run(root: Root, cached: bool = True) -> Findings:
    return verify(context(root, journal(), bus=healthy()), cached=cached)


def plain(results: tuple[CheckResult, ...]) -> list[CheckResult]:
    return [r._replace(cached=False, proven=None) for r in results]


def cached_checks(report: Findings) -> set[str]:
    return {str(r.check) for r in report.results if r.cached}


def test_a_second_run_takes_the_boot_checks_and_runs_the_rest(node: Root) -> None:
    first = run(node)
    assert first.ok and not cached_checks(first)
    assert (Path(node.path) / BOOT_CHECKS.lstrip("/")).stat().st_mode & 0o777 == 0o640
    second = run(node)
    assert plain(second.results) == plain(first.results)  # the same verdict, the same order
    assert cached_checks(second) == {str(r.check) for r in first.results
                                     if r.check in BOOT}
    assert not cached_checks(second) & {"module-loaded", "sysctl-value", "kube-proxy"}
    assert all(r.proven is not None for r in second.results if r.cached)
    doc = second.to_json()["checks"]
    assert {c["check"]: c["cached"] for c in doc}["ordering"] is True
    assert "the boot checks are this boot's, proven at" in "\n".join(second.lines())


def test_without_cached_every_check_runs_and_nothing_is_written(node: Root) -> None:
    run(node)
    assert not cached_checks(run(node, cached=False))
    os.unlink(Path(node.path) / BOOT_CHECKS.lstrip("/"))
    run(node, cached=False)
    assert not (Path(node.path) / BOOT_CHECKS.lstrip("/")).exists()


@pytest.mark.parametrize("change", [
    # A file the proof read changed, a file appeared where none was, a drop-in directory.
    lambda t: write(t, "/etc/sysctl.d/99-late.conf", f"{KEY.replace('/', '.')} = 0\n"),
    lambda t: write(t, "/usr/lib/systemd/system/systemd-sysctl.service", "[Unit]\n"),
    lambda t: write(t, "/etc/systemd/system/systemd-sysctl.service.d/x.conf",
                    "[Unit]\nBefore=systemd-modules-load.service\n"),
    lambda t: write(t, "/etc/nftune/nftune.conf", "[Modules]\nLoad=nf_conntrack\n"),
    lambda t: os.rmdir(t / "sys/module/nf_conntrack"),  # module-timing reads it
], ids=["sysctl.d", "unit", "drop-in", "config", "module"])
def test_any_change_to_what_they_read_runs_them_again(node: Root, change: object) -> None:
    run(node)
    change(Path(node.path))  # type: ignore[operator]
    again = run(node)
    assert not cached_checks(again)
    assert plain(again.results) == plain(run(node, cached=False).results)
    assert cached_checks(run(node))  # and the new results are kept


def test_the_runtime_checks_always_run(node: Root) -> None:
    run(node)
    write(Path(node.path), f"/proc/sys/{KEY}", "0\n")
    [value] = [r for r in run(node).results if r.check == "sysctl-value"]
    assert value.cause == "changed-at-runtime" and not value.cached


def cache_file(root: Root) -> Path:
    return Path(root.path) / BOOT_CHECKS.lstrip("/")


def forge(root: Root, edit: object) -> None:
    path = cache_file(root)
    doc = json.loads(path.read_text())
    edit(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    path.chmod(0o640)


@pytest.mark.parametrize("edit", [
    lambda d: d.update(boot_id="0" * 32),  # an earlier boot's
    lambda d: d.update(proven=d["proven"] - 3600),  # older than this boot
    lambda d: d.update(proven=d["proven"] + 3600),  # from the future
    lambda d: d.update(nftune="0.0"),  # another version's
    lambda d: d.update(schema=2),
    lambda d: d["results"][0].__setitem__(0, "sysctl-value"),  # a runtime check
    lambda d: d["results"][0].__setitem__(3, "no-such-cause"),
    lambda d: d["results"][0].__setitem__(4, ["not", "text"]),
    lambda d: d["paths"][0].__setitem__(2, ["x"]),
    lambda d: d["paths"].append([1, 2, 3]),
    lambda d: d.update(results="x" * 10),
    lambda d: d.clear(),
], ids=["boot", "old", "future", "version", "schema", "runtime-check", "cause", "field",
        "state", "path", "results", "empty"])
def test_a_cache_it_cannot_trust_is_never_taken(node: Root, edit: object) -> None:
    run(node)
    forge(node, edit)
    assert not cached_checks(run(node))


def test_a_cache_others_could_write_is_never_taken(node: Root) -> None:
    run(node)
    cache_file(node).chmod(0o666)
    assert not cached_checks(run(node))
    run(node)
    os.chown(cache_file(node), 65534, 65534)
    assert not cached_checks(run(node))


def test_a_cache_that_is_not_a_file_or_not_json_is_no_error(node: Root) -> None:
    path = cache_file(node)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    assert not cached_checks(run(node))  # never opened for reading: no hang
    os.unlink(path)
    path.write_text("[" * 100_000)
    path.chmod(0o640)
    assert not cached_checks(run(node))


def test_the_service_takes_the_cache_and_the_command_line_asks(node: Root,
                                                                capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    args = ["verify", "--json", "--cached"]
    assert main(args, host=node, bus_factory=lambda _: healthy(), runner=journal()) == 0
    assert main(args, host=node, bus_factory=lambda _: healthy(), runner=journal()) == 0
    doc = json.loads(capsys.readouterr().out.split("\n}\n")[1] + "\n}")
    assert {c["check"] for c in doc["checks"] if c["cached"]} >= {"ordering", "sysctl-boot"}
    assert main(["verify", "--json"], host=node, bus_factory=lambda _: healthy(),
                runner=journal()) == 0
    assert not any(c["cached"] for c in json.loads(capsys.readouterr().out)["checks"])


def test_a_service_s_own_proc_and_dev_are_the_same_tree(node: Root) -> None:
    """Each run of the sandboxed service mounts its own /proc and /dev: new inodes and
    times (measured in the package test), the same entries. What an entry is counts there,
    and the values as text."""
    tree = Path(node.path)
    (tree / "dev").mkdir(exist_ok=True)
    run(node)
    for d in ("proc/sys/kernel", "proc/sys/kernel/random", "dev"):  # other times
        os.utime(tree / d, ns=(1, 1))
    assert cached_checks(run(node))
    write(tree, "/proc/sys/kernel/osrelease", "6.1.0-other\n")  # a value: it counts
    assert not cached_checks(run(node))


@pytest.mark.parametrize("flags", [0, os.O_NOFOLLOW, os.O_DIRECTORY,
                                   os.O_DIRECTORY | os.O_NOFOLLOW])
@pytest.mark.parametrize("path", ["/", "/etc", "/etc/passwd", "/bin", "/lib/os-release",
                                  "/no/such/path", "/etc/passwd/x", "/dev/null", "/proc/1"])
def test_on_the_host_a_stat_resolves_as_root_open_does(path: str, flags: int) -> None:
    """On "/" the cache checks each path with stat(), not openat2(): the same answer."""
    from nftune.cache import _stat_host, _stat_in

    assert _stat_host(path, flags) == _stat_in(Root("/"))(path, flags)


def test_a_run_before_the_boot_finished_keeps_nothing(node: Root) -> None:
    """A unit may still run before the boot finishes: the service's run at boot is not
    kept, the first timer run is."""
    booting = healthy()
    booting._boot = booting.boot()._replace(finish=0)
    verify(context(node, journal(), bus=booting), cached=True)
    assert not cache_file(node).exists()
    run(node)
    assert cache_file(node).exists()
