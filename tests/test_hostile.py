"""The tree is a boundary. Each hostile tree is run next to a sentinel directory of bait
(files with nftune's names and header, empty directories, a config with a secret): after
every verb the sentinel's full listing with hashes must be unchanged, and no verb may end
in a traceback. Both resolvers run: openat2(RESOLVE_IN_ROOT) and the O_NOFOLLOW walk."""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write
from hostile import (
    BAIT,
    LINK_KINDS,
    MARK,
    SECRET,
    build_bait,
    build_tree,
    fingerprint,
    link_dir,
)

from nftune import chase
from nftune.cli import main
from nftune.errors import NftuneError
from nftune.root import Root

VERBS = (["apply"], ["clean"], ["verify"], ["verify", "--service"], ["rps", "apply"],
         ["rps", "show"], ["config"], ["chain"])


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "walk":
        chase.disable_openat2()
    try:
        yield request.param
    finally:
        chase.enable_openat2()


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    tree.mkdir()
    build_tree(tree)
    build_bait(outside)
    return tree, outside


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_openat2_is_what_runs_here() -> None:
    """The kernel here has openat2: the fast path is the one tested with 'openat2'."""
    chase.enable_openat2()
    assert chase._impl() is not None


@pytest.mark.parametrize("kind", LINK_KINDS)
@pytest.mark.parametrize("d", sorted(BAIT))
def test_a_linked_directory_never_leads_out(world: tuple[Path, Path], d: str, kind: str,
                                            resolver: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    tree, outside = world
    assert run(capsys, "apply", "--root", str(tree))[0] == 0  # nftune's files are there
    link_dir(tree, outside, d, kind)
    before = fingerprint(outside)
    for verb in VERBS:
        rc, out, err = run(capsys, *verb, "--root", str(tree))
        assert rc in (0, 1, 2, 3), (verb, rc, err)
        assert SECRET not in out + err, verb
        assert fingerprint(outside) == before, f"{verb} changed the outside through {d}"


def test_state_that_climbs_out_is_ignored(world: tuple[Path, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    tree, outside = world
    rel = os.path.relpath(outside / "etc/empty", tree)
    for bad in ([f"/{rel}"], ["/etc/../../outside/etc/empty"], [str(outside / "etc/empty")],
                ["/etc/udev", 7], ["/usr/share"], "/etc"):
        write(tree, "/var/lib/nftune/state.json", json.dumps(
            {"generator": "nftune", "version": 1, "created_dirs": bad}))
        before = fingerprint(outside)
        (tree / "usr/share").mkdir(parents=True, exist_ok=True)
        rc, _, err = run(capsys, "clean", "--root", str(tree))
        assert rc == 0 and "state.json: ignored" in err
        assert fingerprint(outside) == before
        assert (tree / "usr/share").is_dir()  # never nftune's: not removed though empty


def test_state_of_another_version_or_shape_is_never_acted_on(
        tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "etc/udev").mkdir(parents=True)
    for state in ({"generator": "nftune", "version": 99, "created_dirs": ["/etc/udev"]},
                  {"generator": "other", "created_dirs": ["/etc/udev"]}, ["/etc/udev"]):
        write(tree, "/var/lib/nftune/state.json", json.dumps(state))
        rc, _, err = run(capsys, "clean", "--root", str(tree))
        assert rc == 0 and "ignored" in err and (tree / "etc/udev").is_dir()
    write(tree, "/var/lib/nftune/state.json", "\x00not json")
    assert run(capsys, "clean", "--root", str(tree))[0] == 0
    assert (tree / "etc/udev").is_dir()


def test_clean_keeps_directories_a_package_ships(tree: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "apply", "--root", str(tree))[0] == 0
    write(tree, "/var/lib/dpkg/info/udev.list", "/etc/udev\n/etc/udev/rules.d\n")
    assert run(capsys, "clean", "--root", str(tree))[0] == 0
    assert (tree / "etc/udev/rules.d").is_dir()  # dpkg's, though nftune made it here
    assert not (tree / "etc/modules-load.d").exists()


def test_prometheus_directory_is_a_path_in_the_tree(world: tuple[Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    tree, outside = world
    host_dir = outside / "prom"
    host_dir.mkdir()
    write(tree, "/etc/nftune/nftune.conf", f"[Verify]\nPrometheusDirectory={host_dir}\n")
    (tree / host_dir.relative_to("/")).mkdir(parents=True)
    journal = tree / "run/systemd/journal"
    journal.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        cwd = os.getcwd()
        os.chdir(journal)  # a socket's path is limited to 108 bytes: bind it relative
        try:
            s.bind("socket")
        finally:
            os.chdir(cwd)
        run(capsys, "verify", "--service", "--root", str(tree))
        assert s.recv(65536).startswith(b"MESSAGE=")  # the tree's journal got the entries
    assert (tree / host_dir.relative_to("/") / "nftune.prom").is_file()
    assert list(host_dir.iterdir()) == []


@pytest.mark.parametrize("value", ["/", "/etc", "/usr", "/proc", "/sys", "/proc/sys/net",
                                   "/etc/systemd/system", "/var", "//etc", "/usr/lib/x"])
def test_a_prometheus_directory_that_opens_the_sandbox_is_refused(
        tree: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, "/etc/nftune/nftune.conf", f"[Verify]\nPrometheusDirectory={value}\n")
    rc, _, err = run(capsys, "config", "--root", str(tree))
    assert rc == 2 and "nftune.conf:2" in err and "PrometheusDirectory" in err


def test_a_config_linked_outside_is_read_in_the_tree(world: tuple[Path, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    tree, outside = world
    (tree / "etc/nftune/nftune.conf").unlink()
    (tree / "etc/nftune/nftune.conf").symlink_to(outside / "etc/nftune/nftune.conf")
    rc, out, err = run(capsys, "config", "--root", str(tree))
    assert rc == 2 and SECRET not in out + err and "dangling" in err
    (tree / "etc/nftune/nftune.conf").unlink()
    (tree / "etc/nftune/nftune.conf").symlink_to("../../../outside/etc/nftune/nftune.conf")
    rc, out, err = run(capsys, "config", "--root", str(tree))
    assert rc == 2 and SECRET not in out + err


def test_rps_apply_writes_sysfs_only_as_resolved_in_the_tree(
        world: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tree, outside = world
    q = tree / "sys/class/net/eth0/queues/rx-0"
    (q / "rps_cpus").unlink()
    (q / "rps_cpus").symlink_to(outside / "sys/class/net/eth0/queues/rx-0/rps_cpus")
    before = fingerprint(outside)
    write(tree, "/etc/nftune/nftune.conf", "[RPS]\nMode=on\n")
    run(capsys, "rps", "apply", "--root", str(tree))
    assert fingerprint(outside) == before


def test_root_opens_nothing_outside(world: tuple[Path, Path]) -> None:
    """Root's own operations, one by one, through links of every kind."""
    tree, outside = world
    root = Root(tree)
    for kind in LINK_KINDS:
        link_dir(tree, outside, "etc/sysctl.d", kind)
        if kind == "loop":
            with pytest.raises(NftuneError, match="symbolic links"):
                root.read_text("/etc/sysctl.d/99-zz.conf")
        else:
            assert root.read_text("/etc/sysctl.d/99-zz.conf") is None
        assert "99-zz.conf" not in root.listdir("/etc/sysctl.d")
        with pytest.raises(NftuneError):
            root.write_atomic("/etc/sysctl.d/90-nftune.conf", b"x", 0o644)
        with pytest.raises(OSError):
            root.unlink("/etc/sysctl.d/90-nftune.conf")
        with pytest.raises(OSError):
            root.rmdir("/etc/sysctl.d/empty")
        for extra in ("hop", "loop-a", "loop-b", "etc/sysctl.d"):
            if (tree / extra).is_symlink():
                (tree / extra).unlink()
    assert (outside / "etc/sysctl.d/90-nftune.conf").read_text().startswith(MARK)


def test_dotdot_stops_at_the_root(tree: Path) -> None:
    write(tree, "/etc/x.conf", "in the tree\n")
    root = Root(tree)
    assert root.read_text("/../../../../etc/x.conf") == "in the tree\n"
    (tree / "up").symlink_to("../../../../../../..")
    assert root.read_text("/up/etc/x.conf") == "in the tree\n"
    assert root.chase("/up/etc/x.conf") == "/etc/x.conf"


def test_the_walk_and_openat2_agree(tree: Path) -> None:
    """The same answers from both resolvers, on links of every shape."""
    write(tree, "/a/b/file", "f\n")
    links = {"l-abs": "/a/b", "l-rel": "a/b", "l-up": "../../a", "a/b/l-self": ".",
             "l-chain": "l-abs", "l-loop": "l-loop", "l-dangle": "/nowhere",
             "a/l-root": "/", "l-file": "/a/b/file"}
    for name, target in links.items():
        (tree / name).symlink_to(target)
    paths = ["/l-abs/file", "/l-rel/file", "/l-up/b/file", "/a/b/l-self/l-self/file",
             "/l-chain/file", "/l-loop", "/l-dangle", "/a/l-root/a/b/file", "/l-file",
             "/l-file/x", "/..", "/", "/a/./b/../b/file"]

    def outcome(p: str) -> object:
        try:
            fd = Root(tree).open(p, os.O_PATH)
        except OSError as e:
            return errno.errorcode[e.errno]
        st = os.fstat(fd)
        os.close(fd)
        return (st.st_dev, st.st_ino)

    with_openat2 = [outcome(p) for p in paths]
    chase.disable_openat2()
    try:
        walked = [outcome(p) for p in paths]
    finally:
        chase.enable_openat2()
    assert walked == with_openat2
    assert with_openat2[paths.index("/l-loop")] == "ELOOP"
