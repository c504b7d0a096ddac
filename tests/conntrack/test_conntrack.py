"""[Conntrack]: the settings and their errors, the sizing rule across machines, the files
rendered, this boot's sizing on a live node, modprobe.d's precedence, and the two checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Commands, add_cpus, add_kernel, add_units, context, fake_live, write

from nftune.apply import apply, size_runtime
from nftune.artifacts import Layer
from nftune.cli import main
from nftune.config import ConntrackConfig, Size, parse
from nftune.conntrack.size import (
    KUBE_PROXY_CAP,
    KUBE_PROXY_MIN,
    STATED_ENTRY,
    Capacity,
    kube_proxy_max,
    needs_machine,
    over_share,
    round_buckets,
    size,
    table_bytes,
)
from nftune.errors import EXIT_USAGE, NftuneError
from nftune.modprobe import ModprobeD, last_assignment, parse_cmdline
from nftune.modprobe import parse as parse_modprobe
from nftune.root import Root
from nftune.verify import verify

GiB = 1 << 30
CONF = "/etc/nftune/nftune.conf"


def config(text: str) -> ConntrackConfig:
    return parse([("nftune.conf", text)]).conntrack


# -- settings --------------------------------------------------------------------------------

def test_settings_parse_and_default_to_unmanaged() -> None:
    assert not config("").managed
    c = config("[Conntrack]\nMax=auto\nBuckets=70000\nMemoryShare=10%\n")
    assert (str(c.max), str(c.buckets), c.memory_share) == ("auto", "70000", 10)
    assert c.max.auto and c.buckets.number == 70000 and c.buckets.origin == ("nftune.conf", 3)
    assert c.managed and needs_machine(c)
    assert not config("[Conntrack]\nMax=auto\nMax=\n").max.managed  # an empty value resets


@pytest.mark.parametrize("line", ["Max=0", "Max=-1", "Max=2147483648", "Max=lots",
                                  "Buckets=268435456", "Buckets=0", "MemoryShare=51",
                                  "MemoryShare=-1", "MemoryShare=5.5", "Max=1e6"])
def test_out_of_range_is_a_usage_error_with_file_and_line(line: str) -> None:
    with pytest.raises(NftuneError) as e:
        config(f"[Conntrack]\n{line}\n")
    assert e.value.exit_code == EXIT_USAGE
    assert (e.value.path, e.value.line) == ("nftune.conf", 2)


def test_a_key_set_twice_names_both_lines() -> None:
    with pytest.raises(NftuneError) as e:
        config("[Sysctl]\nnet.netfilter.nf_conntrack_max=100000\n[Conntrack]\nMax=auto\n")
    assert e.value.exit_code == EXIT_USAGE and e.value.line == 4
    assert "nftune.conf:4" in e.value.message and "nftune.conf:2" in e.value.message
    with pytest.raises(NftuneError):
        config("[Conntrack]\nBuckets=1024\n[Sysctl]\nnet/netfilter/nf_conntrack_buckets=1\n")


def test_a_numeric_max_is_one_of_nftunes_sysctls() -> None:
    c = parse([("nftune.conf", "[Conntrack]\nMax=262144\n")])
    spec = next(s for s in c.sysctls if s.key == "net/netfilter/nf_conntrack_max")
    assert (spec.value, str(spec.origin)) == ("262144", "nftune.conf:2")
    assert "Max=262144                                    # nftune.conf:2" in c.lines()
    assert not any(line.startswith("net.netfilter.nf_conntrack_max") for line in c.lines())


# -- the sizing rule ---------------------------------------------------------------------------

@pytest.mark.parametrize("cpus", [1, 2, 16, 96, 256])
@pytest.mark.parametrize("gib", [1, 2, 4, 16, 64, 256, 1024])
@pytest.mark.parametrize("share", [5, 0, 50])
def test_auto_is_kube_proxys_formula_capped_by_memory(cpus: int, gib: int, share: int) -> None:
    m = Capacity(cpus, gib * GiB, STATED_ENTRY, False)
    s = size(ConntrackConfig(Size(auto=True), Size(auto=True), share), m)
    formula = max(KUBE_PROXY_MIN, min(32768 * cpus, KUBE_PROXY_CAP))
    assert s.formula == formula == kube_proxy_max(cpus)
    assert s.max is not None and s.buckets is not None
    assert s.max <= formula
    if share:  # the whole table, buckets as the kernel rounds them, fits the share
        assert table_bytes(s.max, s.buckets, STATED_ENTRY) <= gib * GiB * share / 100
        assert over_share(s, m, share) is None
        assert s.max == formula or s.memory_cap == s.max  # capped only by memory
    else:
        assert s.max == formula and s.memory_cap is None
    assert s.buckets % 512 == 0 and s.max / 4 <= s.buckets < s.max / 4 + 512


def test_worked_examples() -> None:
    def auto(cpus: int, memory: int, entry: int = STATED_ENTRY) -> tuple[int | None, ...]:
        s = size(ConntrackConfig(Size(auto=True), Size(auto=True), 5),
                 Capacity(cpus, memory, entry, True))
        return s.max, s.buckets

    assert auto(2, 4 * GiB) == (131072, 32768)  # the floor: kube-proxy's min
    assert auto(16, 64 * GiB) == (524288, 131072)  # 32768 per CPU
    assert auto(96, 384 * GiB) == (1048576, 262144)  # the per-CPU part's cap
    # 512 MiB, 5 %: (26843545 bytes - 511 buckets of rounding x 8 B) / (320 + 2) per
    # entry = 83352 entries.
    assert auto(2, 512 << 20) == (83352, round_buckets(20838)) == (83352, 20992)
    assert auto(2, 512 << 20, entry=256) == (104028, 26112)  # the slab's 256 bytes
    assert kube_proxy_max(4, per_core=0) is None  # maxPerCore 0: kube-proxy leaves it
    assert kube_proxy_max(64, cap=None) == 2097152  # before 1.36, no cap


def test_numbers_need_no_machine() -> None:
    s = size(ConntrackConfig(Size(200000), Size(auto=True), 5), None)
    assert (s.max, s.buckets, s.machine) == (200000, 50176, None)
    assert size(ConntrackConfig(Size(), Size(1000), 5), None).buckets == 1024
    with pytest.raises(ValueError):
        size(ConntrackConfig(Size(auto=True), Size(), 5), None)


# -- rendered files ----------------------------------------------------------------------------

def applied(tree: Path, text: str) -> dict[str, str]:
    write(tree, CONF, text)
    add_kernel(tree, "6.1.0-test")
    assert main(["apply", "--root", str(tree)]) == 0
    return {str(p.relative_to(tree)): p.read_text() for p in tree.rglob("*")
            if p.is_file() and "nftune" in p.name}


def test_numbers_are_rendered_into_sysctl_d_and_modprobe_d(tree: Path) -> None:
    files = applied(tree, "[Conntrack]\nMax=262144\nBuckets=auto\n")
    assert "net.netfilter.nf_conntrack_max = 262144\n" in files["etc/sysctl.d/90-nftune.conf"]
    assert "options nf_conntrack hashsize=65536\n" in files["etc/modprobe.d/nftune.conf"]
    # nftune-conntrack.service runs at boot for numbers too: a table already there (built
    # in, or from an initramfs) is resized, and one too large for the machine is named.
    assert [f for f in files if "nftune-conntrack" in f] == [
        "etc/systemd/system/systemd-modules-load.service.d/nftune-conntrack.conf"]
    assert main(["clean", "--root", str(tree)]) == 0
    assert not (tree / "etc/modprobe.d/nftune.conf").exists()


def test_auto_renders_only_the_boot_units_drop_in(tree: Path) -> None:
    files = applied(tree, "[Conntrack]\nMax=auto\nBuckets=auto\n")
    dropin = files["etc/systemd/system/systemd-modules-load.service.d/nftune-conntrack.conf"]
    assert "Wants=nftune-conntrack.service" in dropin and "After=nftune-conntrack.service" \
        in dropin
    assert "etc/modprobe.d/nftune.conf" not in files
    assert "nf_conntrack_max" not in files["etc/sysctl.d/90-nftune.conf"]
    assert not (tree / "run").exists()  # an image: sized on the machine that boots


@pytest.fixture
def node(tree: Path, commands: Commands) -> Root:
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    add_cpus(tree, "0-15")
    write(tree, "/proc/meminfo", f"MemTotal:       {64 * GiB // 1024} kB\nMemFree: 1 kB\n")
    commands.allow("modprobe", "systemd-sysctl", "udevadm")
    return fake_live(tree, values={"net/netfilter/nf_conntrack_max": "262144",
                                   "net/netfilter/nf_conntrack_buckets": "65536",
                                   "net/netfilter/nf_conntrack_tcp_be_liberal": "1"})


def test_boot_sizes_this_machine_into_run(node: Root, tree: Path, commands: Commands) -> None:
    write(tree, CONF, "[Conntrack]\nMax=auto\nBuckets=auto\n")
    write(tree, "/sys/module/nf_conntrack/parameters/hashsize", "65536\n")
    write(tree, "/sys/kernel/slab/nf_conntrack/object_size", "256\n")
    ctx = context(node, commands)
    done = size_runtime(ctx, ctx.config)
    assert (done.sizing.max, done.sizing.buckets) == (524288, 131072)
    assert done.sizing.machine == Capacity(16, 64 * GiB, 256, True)
    assert "net.netfilter.nf_conntrack_max = 524288" in \
        (tree / "run/sysctl.d/90-nftune-conntrack.conf").read_text()
    assert "options nf_conntrack hashsize=131072" in \
        (tree / "run/modprobe.d/nftune-conntrack.conf").read_text()
    assert json.loads((tree / "run/nftune/conntrack.json").read_text())["max"] == 524288
    assert done.resized == "65536"  # the loaded table, resized through sysfs
    assert (tree / "sys/module/nf_conntrack/parameters/hashsize").read_text() == "131072\n"
    # A config that no longer sizes at boot takes its runtime files away.
    write(tree, CONF, "[Conntrack]\nMax=200000\n")
    ctx = context(node, commands)
    size_runtime(ctx, ctx.config)
    assert not (tree / "run/sysctl.d/90-nftune-conntrack.conf").exists()
    assert not (tree / "run/modprobe.d/nftune-conntrack.conf").exists()


def test_apply_on_a_live_node_sizes_then_loads(node: Root, tree: Path,
                                              commands: Commands) -> None:
    write(tree, CONF, "[Conntrack]\nMax=auto\n")
    plan = apply(context(node, commands), Layer.ADMIN)
    assert plan.sized is not None and plan.sized.sizing.max == 524288
    sysctl = next(c for c in commands.calls if c[0].endswith("systemd-sysctl"))
    assert "--prefix=/net/netfilter/nf_conntrack_max" in sysctl
    assert commands.calls[0][0] == "modprobe"  # after the /run files exist


def test_a_machine_that_cannot_be_read_is_an_error_not_a_guess(node: Root, tree: Path,
                                                                commands: Commands) -> None:
    write(tree, CONF, "[Conntrack]\nMax=auto\n")
    (tree / "proc/meminfo").write_text("garbage\n")
    ctx = context(node, commands)
    with pytest.raises(NftuneError) as e:
        size_runtime(ctx, ctx.config)
    assert "meminfo" in (e.value.path or "")
    assert not (tree / "run/sysctl.d").exists()


# -- modprobe.d ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("files", "cmdline", "winner"), [
    ({"/etc/modprobe.d/nftune.conf": "options nf_conntrack hashsize=1024\n"}, "",
     ("/etc/modprobe.d/nftune.conf", "1024")),
    # Names sort across directories: z.conf in /usr/lib comes after nftune.conf in /etc.
    ({"/etc/modprobe.d/nftune.conf": "options nf_conntrack hashsize=1024\n",
      "/usr/lib/modprobe.d/z.conf": "options nf-conntrack hashsize=7\n"}, "",
     ("/usr/lib/modprobe.d/z.conf", "7")),
    # The same name in /etc hides /usr/lib's; a /dev/null link hides it too.
    ({"/etc/modprobe.d/z.conf": "# mine\n",
      "/usr/lib/modprobe.d/z.conf": "options nf_conntrack hashsize=7\n",
      "/run/modprobe.d/a.conf": "options nf_conntrack hashsize=3 hashsize=9\n"}, "",
     ("/run/modprobe.d/a.conf", "9")),
    # The kernel command line comes last.
    ({"/etc/modprobe.d/nftune.conf": "options nf_conntrack hashsize=1024\n"},
     "quiet nf_conntrack.hashsize=2048", ("/proc/cmdline", "2048")),
    # Comments, other modules, other parameters, and a continued line.
    ({"/etc/modprobe.d/a.conf": "#options nf_conntrack hashsize=1\n"
                                "options nf_conntrack_ftp ports=21\n"
                                "options nf_conntrack expect_hashsize=5 \\\n hashsize=11\n"},
     "", ("/etc/modprobe.d/a.conf", "11")),
    ({}, "", None),
])
def test_which_file_has_the_last_word(tree: Path, files: dict[str, str], cmdline: str,
                                      winner: tuple[str, str] | None) -> None:
    for path, text in files.items():
        write(tree, path, text)
    if "/etc/modprobe.d/z.conf" in files and "/run/modprobe.d/a.conf" in files:
        (tree / "etc/modprobe.d/y.conf").symlink_to("/dev/null")
    write(tree, "/proc/cmdline", cmdline + "\n")
    found = ModprobeD.load(Root(tree), cmdline=True).winner("nf_conntrack", "hashsize")
    assert (None if found is None else (found[0].file, found[1])) == winner


def test_kmods_line_rules() -> None:
    got = parse_modprobe("options a\tx=1\t\n options b y=2\n#options c z=3\n"
                         "options d\noptions e[-] w=4\noptions f\\\n v=5\0junk\n", "f")
    assert [(o.module, o.params, o.line) for o in got] == [
        ("a", "x=1 ", 1), ("b", "y=2", 2), ("e[-]", "w=4", 5), ("f", "v=5", 6)]
    assert [(o.module, o.params) for o in parse_cmdline("a.b c.d=1 e.f.g=2 h-i.j=k=l x=y")] \
        == [("a", "b"), ("c", "d=1"), ("h_i", "j=k=l")]
    assert last_assignment('x=1 hashsize=5 y="a hashsize=6" hash-size=7', "hash_size") == "7"


# -- the checks --------------------------------------------------------------------------------

def checks_of(root: Root, commands: Commands) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for r in verify(context(root, commands)).results:
        out.setdefault(r.check, []).append((r.status, r.cause, r.reason))
    return out


def test_modprobe_options_names_the_file_that_wins(tree: Path, commands: Commands) -> None:
    applied(tree, "[Conntrack]\nBuckets=65536\n")
    root = Root(tree)
    assert checks_of(root, commands)["modprobe-options"][0][0] == "passed"
    write(tree, "/etc/modprobe.d/zz-local.conf", "options nf_conntrack hashsize=4096\n")
    status, cause, reason = checks_of(root, commands)["modprobe-options"][0]
    assert (status, cause) == ("failed", "modprobe-overridden")
    assert "zz-local.conf:1" in reason
    assert checks_of(root, commands)["conntrack-size"][0][:2] == ("skipped", "not-live")


def test_an_older_initramfs_is_named(tree: Path, commands: Commands) -> None:
    write(tree, "/boot/initrd.img-6.1.0-test", "cpio")
    import os

    os.utime(tree / "boot/initrd.img-6.1.0-test", (1, 1))
    applied(tree, "[Conntrack]\nBuckets=65536\n")
    assert "initrd.img-6.1.0-test is older" in \
        checks_of(Root(tree), commands)["modprobe-options"][0][2]


def test_conntrack_size_on_a_live_node(node: Root, tree: Path, commands: Commands) -> None:
    write(tree, CONF, "[Conntrack]\nMax=auto\nBuckets=auto\n")
    assert checks_of(node, commands)["conntrack-size"][0][:2] == ("failed", "not-sized")
    apply(context(node, commands), Layer.ADMIN)
    write(tree, "/proc/sys/net/netfilter/nf_conntrack_max", "524288\n")  # systemd-sysctl's
    write(tree, "/proc/sys/net/netfilter/nf_conntrack_buckets", "131072\n")
    result = checks_of(node, commands)
    assert result["conntrack-size"][0][0] == "passed", result["conntrack-size"]
    assert result["modprobe-options"][0][0] == "passed", result["modprobe-options"]
    write(tree, "/proc/sys/net/netfilter/nf_conntrack_max", "65536\n")
    assert checks_of(node, commands)["conntrack-size"][0][:2] == ("failed", "not-sized")


def test_conntrack_verb_shows_wanted_and_live(node: Root, tree: Path, commands: Commands,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, CONF, "[Conntrack]\nMax=auto\n")
    assert main(["conntrack", "--json"], host=node, runner=commands) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["wanted"]["max"] == 524288 and shown["live"]["max"] == 262144
    assert main(["conntrack", "--root", str(tree)], runner=commands) == 0
    assert "sized at boot" in capsys.readouterr().out
    assert main(["conntrack", "--boot", "--root", str(tree)], runner=commands) == 2


def test_the_readmes_worked_examples() -> None:
    """Each row of the README's table, as the README has it, is what nftune computes."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) CPUs, (\d+) GiB, (\d+) % \| (\d+)(?: \(capped\))? \| "
                      r"([\d,]+) \| (\d+) \| (\d+) \| (\d+) MiB \|$", readme, re.M)
    assert len(rows) == 4
    for cpus, gib, share, formula, cap, mx, buckets, table in rows:
        m = Capacity(int(cpus), int(gib) * GiB, 320, False)
        s = size(ConntrackConfig(Size(auto=True), Size(auto=True), int(share)), m)
        uncapped = size(ConntrackConfig(Size(auto=True), Size(auto=True), 0), m)
        room = int(gib) * GiB * int(share) / 100 - 511 * 8
        assert (s.formula, int(room / 322), s.max, s.buckets) == (
            int(formula), int(cap.replace(",", "")), int(mx), int(buckets))
        assert s.memory_cap in (None, s.max) and uncapped.max == int(formula)
        assert round(table_bytes(s.max, s.buckets, 320) / (1 << 20)) == int(table)


def test_a_table_that_cannot_be_resized_leaves_the_files_applied(
        node: Root, tree: Path, commands: Commands) -> None:
    write(tree, CONF, "[Conntrack]\nMax=auto\nBuckets=auto\n")
    (tree / "sys/module/nf_conntrack/parameters/hashsize").mkdir(parents=True)
    ctx = context(node, commands)
    done = size_runtime(ctx, ctx.config)
    assert done.resized is None and done.not_resized and "not a regular file" in \
        done.not_resized
    assert (tree / "run/modprobe.d/nftune-conntrack.conf").exists()
    assert any("keeps its size" in line for line in done.lines(node))
    # Without auto sizing, this boot's record goes too.
    write(tree, CONF, "")
    ctx = context(node, commands)
    size_runtime(ctx, ctx.config)
    assert not (tree / "run/nftune/conntrack.json").exists()


def test_clean_takes_this_boots_files_too(node: Root, tree: Path, commands: Commands) -> None:
    write(tree, CONF, "[Conntrack]\nMax=auto\nBuckets=auto\n")
    apply(context(node, commands), Layer.ADMIN)
    assert (tree / "run/sysctl.d/90-nftune-conntrack.conf").exists()
    write(tree, "/run/sysctl.d/90-nftune-conntrack-x.conf", "# an admin's\n")
    assert main(["clean"], host=node, runner=commands) == 0
    assert not (tree / "run/sysctl.d/90-nftune-conntrack.conf").exists()
    assert not (tree / "run/modprobe.d/nftune-conntrack.conf").exists()
    assert (tree / "run/sysctl.d/90-nftune-conntrack-x.conf").exists()


def test_old_kmod_on_a_tree_with_odd_links_does_not_crash(tree: Path) -> None:
    write(tree, "/var/lib/dpkg/status", "Package: kmod\nStatus: install ok installed\n"
                                        "Version: 28-1\n\n")
    (tree / "etc/modprobe.d").mkdir(parents=True)
    (tree / "usr/lib").mkdir(parents=True)
    (tree / "usr/lib/modprobe.d").symlink_to("/etc/modprobe.d")
    write(tree, "/lib/modprobe.d/a.conf", "options nf_conntrack hashsize=5\n")
    write(tree, "/usr/local/lib/modprobe.d/b.conf", "options nf_conntrack hashsize=6\n")
    found = ModprobeD.load(Root(tree), cmdline=False).winner("nf_conntrack", "hashsize")
    assert found is not None and found[1] == "5"  # kmod 28 reads no /usr/local/lib


def test_a_mask_hides_even_where_the_tree_has_no_dev_null(tree: Path) -> None:
    write(tree, "/usr/lib/modprobe.d/zz.conf", "options nf_conntrack hashsize=1\n")
    (tree / "etc/modprobe.d").mkdir(parents=True)
    (tree / "etc/modprobe.d/zz.conf").symlink_to("/dev/null")
    assert not (tree / "dev/null").exists()
    assert ModprobeD.load(Root(tree), cmdline=False).winner("nf_conntrack", "hashsize") \
        is None


def test_modprobe_options_compares_the_value_and_the_owner(tree: Path,
                                                           commands: Commands) -> None:
    applied(tree, "[Conntrack]\nBuckets=65536\n")
    own = tree / "etc/modprobe.d/nftune.conf"
    own.write_text(own.read_text().replace("hashsize=65536", "hashsize=1024"))
    assert checks_of(Root(tree), commands)["modprobe-options"][0][:2] == \
        ("failed", "file-stale")
    own.write_text("options nf_conntrack hashsize=65536\n")  # not nftune's any more
    assert checks_of(Root(tree), commands)["modprobe-options"][0][:2] == \
        ("failed", "file-masked")


@pytest.mark.parametrize("record", ['{"max": -5, "buckets": 1}', '{"max": 1e99}', "[1]",
                                    '{"max": 100, "machine": {"cpus": -1}}', "not json"])
def test_a_forged_record_is_no_decision(tree: Path, record: str) -> None:
    from nftune.conntrack.record import read_record

    write(tree, "/run/nftune/conntrack.json", record)
    got = read_record(Root(tree))
    assert got is None or (got.max == 100 and got.machine is None)


def test_a_modprobe_d_entry_that_would_block_modprobe_fails(tree: Path,
                                                            commands: Commands) -> None:
    applied(tree, "[Conntrack]\nBuckets=65536\n")
    os.mkfifo(tree / "etc/modprobe.d/zz.conf")
    status, cause, reason = checks_of(Root(tree), commands)["modprobe-options"][0]
    assert (status, cause) == ("failed", "unreadable") and "zz.conf" in reason


# -- sizes the kernel and the machine can hold (issue 24) ---------------------------------

def test_buckets_never_exceed_what_the_kernel_allocates(tree: Path) -> None:
    """Max=2147483647 with Buckets=auto asked for 536870912 buckets, which the kernel
    refuses (nf_conntrack would not load): the largest table it makes instead."""
    files = applied(tree, "[Conntrack]\nMax=2147483647\nBuckets=auto\n")
    assert "options nf_conntrack hashsize=268434944\n" in files["etc/modprobe.d/nftune.conf"]
    assert 268434944 % 512 == 0 and 268434944 * 8 < 1 << 31 <= (268434944 + 512) * 8
    for mx in (1073739777, 1073739776 + 512 * 4, 2147483647):
        assert size(ConntrackConfig(Size(mx), Size(auto=True), 5), None).buckets == 268434944


@pytest.mark.parametrize("buckets", ["268435456", "268435455", "268434945"])
def test_a_hash_size_the_kernel_refuses_is_a_config_error(tree: Path, buckets: str,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    write(tree, CONF, f"[Conntrack]\nBuckets={buckets}\n")
    assert main(["apply", "--root", str(tree)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{CONF}:2" in err and "Buckets must be auto or a number from 1 to 268434944" in err
    assert not (tree / "etc/modprobe.d").exists()


def test_a_table_too_large_for_the_machine_is_named(node: Root, tree: Path,
                                                   commands: Commands) -> None:
    """4 GiB, 5 %: 214 MiB. 16777216 buckets (128 MiB) + 1048576 entries x 320 B (320 MiB)
    is more: at boot (nftune-conntrack), live (verify) and on an image (a warning that
    names the RAM below which it does not fit)."""
    write(tree, "/proc/meminfo", f"MemTotal: {4 * GiB // 1024} kB\n")
    write(tree, CONF, "[Conntrack]\nMax=1048576\nBuckets=16777216\n")
    ctx = context(node, commands)
    done = size_runtime(ctx, ctx.config)
    want = ("the table takes up to 448 MiB at full size (16777216 buckets x 8 B + 1048576 "
            "entries x 320 B), more than MemoryShare=5% of this machine's 4.0 GiB of RAM")
    assert done.too_large == want
    assert f"conntrack: warning: {want}; lower [Conntrack] Max= or Buckets=, or use auto" \
        in done.lines(node)
    [(status, cause, reason)] = checks_of(node, commands)["conntrack-size"]
    assert (status, cause, reason) == ("failed", "too-large", want)
    # The slab's measured size counts when the module is loaded.
    write(tree, "/sys/kernel/slab/nf_conntrack/object_size", "256\n")
    assert "1048576 entries x 256 B" in checks_of(node, commands)["conntrack-size"][0][2]
    # An image: 448 MiB is 5 % of 8.75 GiB.
    (tree / "proc").rename(tree / "proc.off")
    [(status, cause, reason)] = checks_of(Root(tree), commands)["conntrack-size"]
    assert (status, cause) == ("skipped", "not-live")
    assert reason.endswith("; a machine with less than 8.8 GiB of RAM would give this "
                           "table more than MemoryShare=5% of it at full size (320 B an "
                           "entry; verify on the node checks it)"), reason
    write(tree, CONF, "[Conntrack]\nMax=131072\nBuckets=32768\n")  # kube-proxy's own: 40 MiB
    [(_, _, reason)] = checks_of(Root(tree), commands)["conntrack-size"]
    assert "a machine with less than 0.8 GiB of RAM" in reason
    write(tree, CONF, "[Conntrack]\nMax=1048576\nBuckets=16777216\nMemoryShare=0\n")
    [(_, _, reason)] = checks_of(Root(tree), commands)["conntrack-size"]
    assert reason == "--root: not the running system"  # no share to keep to


@pytest.mark.parametrize("live", [True, False])
def test_a_built_in_nf_conntrack_takes_no_modprobe_d(tree: Path, commands: Commands,
                                                     live: bool) -> None:
    add_kernel(tree, "6.1.0-test", modules=(), builtin=("nf_conntrack",))
    add_units(tree)
    write(tree, CONF, "[Conntrack]\nBuckets=65536\n")
    write(tree, "/proc/cmdline", "root=/dev/vda nf_conntrack.hashsize=4096 quiet\n")
    root = fake_live(tree) if live else Root(tree)
    assert main(["apply", "--root", str(tree)], runner=commands) == 0
    [(status, cause, reason)] = checks_of(root, commands)["modprobe-options"]
    assert (status, cause) == ("skipped", "not-applicable")
    where = "the running kernel (6.1.0-test)" if live else "every installed kernel (6.1.0-test)"
    assert reason.startswith(f"nf_conntrack is built into {where}: modprobe.d never applies "
                             "to it; nftune-conntrack.service sets the hash size through "
                             "/sys/module/nf_conntrack/parameters/hashsize at boot"), reason
    assert ("the kernel command line's nf_conntrack.hashsize=4096 sets it first" in reason) \
        is live
    # The boot's service sets it through sysfs, numbers and auto alike.
    dropin = tree / "etc/systemd/system/systemd-modules-load.service.d/nftune-conntrack.conf"
    assert "Wants=nftune-conntrack.service" in dropin.read_text()
