"""The tree is a boundary. Each hostile tree is run next to a sentinel directory of bait
(files with nftune's names and header, empty directories, a config with a secret): after
every verb the sentinel's full listing with hashes must be unchanged, and no verb may end
in a traceback. Both resolvers run: openat2(RESOLVE_IN_ROOT) and the O_NOFOLLOW walk."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run, write
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
from nftune.errors import NftuneError
from nftune.root import Root
from nftune.treewrite import rmdir, unlink, write_atomic

VERBS = (["apply"], ["clean"], ["verify"], ["verify", "--service"], ["rps", "apply"],
         ["rps", "show"], ["config"], ["chain"], ["conntrack"])


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


def test_openat2_is_what_runs_here() -> None:
    """The kernel here has openat2: the fast path is the one tested with 'openat2'."""
    chase.enable_openat2()
    assert chase.openat2_in_use()


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
            write_atomic(root, "/etc/sysctl.d/90-nftune.conf", b"x", 0o644)
        with pytest.raises(OSError):
            unlink(root, "/etc/sysctl.d/90-nftune.conf")
        with pytest.raises(OSError):
            rmdir(root, "/etc/sysctl.d/empty")
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


def test_a_device_node_in_the_tree_is_never_opened(world: tuple[Path, Path],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Opening some devices has effects (a watchdog arms) and writing a block device
    destroys it: every descriptor nftune opens for I/O is checked here to be no device.
    /dev/null's numbers stand in for the dangerous ones."""
    tree, _ = world
    assert run(capsys, "apply", "--root", str(tree))[0] == 0
    write(tree, "/etc/nftune/nftune.conf", "[RPS]\nMode=on\n")
    for p in ("sys/class/net/eth0/queues/rx-0/rps_cpus", "proc/sys/net/core/rps_sock_flow_entries",
              "etc/sysctl.d/50-dev.conf", "etc/nftune/nftune.conf.d/50-dev.conf",
              "lib/modules/6.1.0-18-amd64/modules.dep", "etc/modules-load.d/dev.conf",
              "usr/lib/systemd/system/systemd-modules-load.service",
              "var/lib/nftune/state.json", "sys/devices/system/cpu/online"):
        f = tree / p
        f.parent.mkdir(parents=True, exist_ok=True)
        if f.exists() or f.is_symlink():
            f.unlink()
        os.mknod(f, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    real_open = os.open
    opened: list[str] = []

    def audited(path: object, flags: int, *args: object, **kw: object) -> int:
        fd = real_open(path, flags, *args, **kw)  # type: ignore[arg-type]
        if not flags & os.O_PATH and stat.S_ISCHR(os.fstat(fd).st_mode) | stat.S_ISBLK(
                os.fstat(fd).st_mode):
            opened.append(str(path))
        return fd

    monkeypatch.setattr(os, "open", audited)
    for verb in VERBS:
        rc, _, err = run(capsys, *verb, "--root", str(tree))
        assert rc in (0, 1, 2, 3), (verb, err)
    assert opened == []
    (tree / "etc/nftune/nftune.conf.d/50-dev.conf").unlink()
    (tree / "sys/devices/system/cpu/online").unlink()
    write(tree, "/sys/devices/system/cpu/online", "0-3\n")
    rc, _, err = run(capsys, "rps", "apply", "--root", str(tree))
    assert rc == 3 and "a device, not a regular file" in err


def test_listing_leaks_no_descriptor(tree: Path) -> None:
    (tree / "d").mkdir()
    root = Root(tree)
    root.listdir("/d")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(100):
        root.listdir("/d")
    assert len(os.listdir("/proc/self/fd")) == before


def test_the_walk_follows_a_linked_directory_at_the_end(tree: Path) -> None:
    write(tree, "/usr/lib/sysctl.d/10-x.conf", "x = 1\n")
    (tree / "etc").mkdir()
    (tree / "etc/sysctl.d").symlink_to("../usr/lib/sysctl.d")
    chase.disable_openat2()
    try:
        root = Root(tree)
        assert list(root.listdir("/etc/sysctl.d")) == ["10-x.conf"]
        write_atomic(root, "/etc/sysctl.d/90-nftune.conf", b"# Generated by nftune\n", 0o644)
        with pytest.raises(OSError):
            root.open("/usr/lib/sysctl.d/10-x.conf", os.O_PATH | os.O_DIRECTORY)
    finally:
        chase.enable_openat2()
    assert (tree / "usr/lib/sysctl.d/90-nftune.conf").is_file()


def test_the_kernels_own_files_read_through_root() -> None:
    """procfs and sysfs as they are (a fake tree has only regular files): read whole, read
    as attributes, and known for the kernel's."""
    from nftune.attrs import read_attr

    root = Root(Path("/"))
    release = os.uname().release
    assert (root.read_text("/proc/sys/kernel/osrelease") or "").strip() == release
    assert read_attr(root, "/proc/sys/kernel/osrelease") == release
    assert read_attr(root, "/sys/devices/system/cpu/online")
    for d in ("/proc/sys/kernel", "/sys/devices/system/cpu"):
        with root.directory(d) as fd:
            assert fd is not None and chase.on_kernel_fs(fd)
