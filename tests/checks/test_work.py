"""The work of the boot (nftune/checks/work.py, nftune/kmod.py, nftune/unitwork.py, the
udev flow in nftune/udev.py): each case the issue tried as a new user would, after
`nftune apply --root`, fails `verify --root` and `chain --root` with the file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Commands, add_kernel, add_units, applied, context, run, verified, write

from nftune.kernel import read_kernels
from nftune.kmod import KernelData, Kmod, command_effect
from nftune.kmod import verdict as kmod_verdict
from nftune.modprobe import ModprobeD
from nftune.result import Cause, Status
from nftune.root import Root

ML, SC = "systemd-modules-load.service", "systemd-sysctl.service"
KEY = "net/netfilter/nf_conntrack_tcp_be_liberal"
ETC = "/etc/systemd/system"


@pytest.fixture
def image(tree: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A bookworm-like tree after `nftune apply --root`: verify passes."""
    add_kernel(tree, "6.1.0-test", ("nf_conntrack", "nf_defrag_ipv6"))
    dep = tree / "lib/modules/6.1.0-test/modules.dep"
    dep.write_text(dep.read_text().replace(
        "nf_conntrack.ko.xz: kernel/lib/libcrc32c.ko.xz",
        "nf_conntrack.ko.xz: kernel/net/netfilter/nf_defrag_ipv6.ko.xz kernel/lib/libcrc32c.ko.xz"))
    add_units(tree)
    for program in ("/bin/true", "/bin/false", "/usr/bin/true", "/usr/bin/false",
                    "/sbin/modprobe", "/usr/bin/logger"):
        write(tree, program, "")
    assert run(capsys, "apply", "--root", str(tree))[0] == 0
    assert run(capsys, "verify", "--root", str(tree))[0] == 0
    return tree


def verdict(tree: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, int, str]:
    """verify's exit code and output, chain's exit code and first line."""
    rc, out, _ = run(capsys, "verify", "--root", str(tree))
    crc, cout, _ = run(capsys, "chain", "--root", str(tree))
    return rc, out, crc, cout.splitlines()[0]


@pytest.mark.parametrize(("line", "cause", "words"), [
    ("blacklist nf_conntrack", "blacklisted", "/etc/modprobe.d/x.conf:2: systemd-modules-"),
    ("install nf_conntrack /bin/true", "install-command", "it does nothing"),
    ("install nf_defrag_ipv6 /bin/false", "install-command",
     "its dependency nf_defrag_ipv6 instead of inserting it, and it fails"),
    ("install nf-conntrack /usr/bin/true $CMDLINE_OPTS", "install-command", "does nothing"),
    ("alias nf_conn* dummy", "aliased", "kmod load dummy"),
])
def test_kmod_refusals_fail_verify_and_chain(image: Path, capsys: pytest.CaptureFixture[str],
                                             line: str, cause: str, words: str) -> None:
    write(image, "/etc/modprobe.d/x.conf", f"# hardening\n{line}\n")
    rc, out, crc, head = verdict(image, capsys)
    assert rc == 1 and crc == 1
    [bad] = [x for x in out.splitlines() if x.startswith("failed: module-insert")]
    assert bad.startswith("failed: module-insert nf_conntrack") and f"[{cause}]" in bad
    assert words in bad, bad
    assert head.startswith(f"NOT proven [{cause}]: "), head


def test_what_kmod_still_inserts(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--ignore-install of the same module loads it; a blacklisted dependency is still
    inserted; a module with softdeps has its install command ignored (kmod #446)."""
    for text in ("install nf_conntrack /sbin/modprobe --ignore-install nf_conntrack "
                 "$CMDLINE_OPTS",
                 "blacklist nf_defrag_ipv6\nblacklist libcrc32c",
                 "install nf_conntrack /bin/true\nsoftdep nf_conntrack pre: libcrc32c",
                 "blacklist nf_conntrack_x\ninstall nf_nat /bin/false\nremove nf_conntrack "
                 "/bin/false"):
        write(image, "/etc/modprobe.d/x.conf", text + "\n")
        [r] = verified(Root(image), "module-insert")
        assert r.status is Status.PASSED, (text, r.line())


def test_a_command_nftune_cannot_see_through_is_named_not_passed(
        image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(image, "/usr/local/sbin/audit-load", "")
    write(image, "/etc/modprobe.d/x.conf", "install nf_conntrack /usr/local/sbin/audit-load\n")
    [r] = verified(Root(image), "module-insert")
    assert (r.status, r.cause) == (Status.SKIPPED, Cause.NOT_EVALUATED)
    assert r.source == "/etc/modprobe.d/x.conf:1" and "cannot tell" in r.reason


def test_an_install_command_whose_program_is_missing_fails(image: Path) -> None:
    write(image, "/etc/modprobe.d/x.conf",
          "install nf_conntrack /usr/sbin/modprobe --ignore-install nf_conntrack\n")
    [r] = verified(Root(image), "module-insert")
    assert r.cause is Cause.INSTALL_COMMAND and "/usr/sbin/modprobe is not in the tree" in r.reason


def test_the_inner_modprobe_looks_the_name_up_again(image: Path) -> None:
    """--ignore-install of a name an alias line takes is not the module: cannot tell."""
    write(image, "/etc/modprobe.d/x.conf", "install nf_defrag_ipv6 /sbin/modprobe "
          "--ignore-install nf_defrag_ipv6\nalias nf_defrag_ipv6 dummy\n")
    [r] = verified(Root(image), "module-insert")
    assert (r.status, r.cause) == (Status.SKIPPED, Cause.NOT_EVALUATED), r.line()


@pytest.mark.parametrize(("line", "status"), [
    ("install nf_conntrac[^x] /bin/false", Status.FAILED),  # glibc: [^x] negates
    ("install nf_conntrac\\k /bin/false", Status.FAILED),  # glibc: \k is k
    # kmod's underscores() refuses a nested bracket: the line is ignored.
    ("install nf_conntrac[[:alpha:]] /bin/false", Status.PASSED),
    ("install nf_conntrac[!k] /bin/false", Status.PASSED),
])
def test_patterns_match_as_kmod_matches_them(image: Path, line: str, status: Status) -> None:
    write(image, "/etc/modprobe.d/x.conf", line + "\n")
    [r] = verified(Root(image), "module-insert")
    assert r.status is status, r.line()


def test_a_kernel_without_kmod_index_is_named(image: Path) -> None:
    os.unlink(image / "lib/modules/6.1.0-test/modules.dep.bin")
    [r] = verified(Root(image), "module-insert")
    assert r.cause is Cause.MODULE_MISSING and "modules.dep.bin, which is missing" in r.reason


def test_a_missing_dependency_fails(image: Path) -> None:
    os.unlink(image / "lib/modules/6.1.0-test/kernel/net/netfilter/nf_defrag_ipv6.ko.xz")
    [r] = verified(Root(image), "module-insert")
    assert (r.status, r.cause) == (Status.FAILED, Cause.DEPENDENCY_MISSING)
    assert "nf_defrag_ipv6" in r.reason


def test_an_unreadable_modprobe_d_entry_is_named_never_read(image: Path) -> None:
    (image / "etc/modprobe.d").mkdir(exist_ok=True)
    os.mkfifo(image / "etc/modprobe.d/fifo.conf")
    [r] = verified(Root(image), "module-insert")
    assert (r.status, r.cause) == (Status.FAILED, Cause.UNREADABLE)
    assert "fifo.conf" in r.reason


def test_live_kernel_command_line_blacklists(tree: Path, commands: Commands) -> None:
    write(tree, "/proc/cmdline", "quiet modprobe.blacklist=veth,nf_conntrack\n")
    root = applied(tree, commands, values={KEY: "1"})
    [r] = verified(root, "module-insert")
    assert (r.subject, r.cause) == ("nf_conntrack", Cause.BLACKLISTED)
    assert "modprobe.blacklist=" in r.reason
    (tree / "proc/cmdline").write_text("quiet module_blacklist=veth\n")
    assert verified(root, "module-insert")[0].status is Status.PASSED
    (tree / "proc/cmdline").write_text("quiet module_blacklist=veth,nf_conntrack\n")
    [r] = verified(root, "module-insert")
    assert r.cause is Cause.BLACKLISTED and "the kernel refuses" in r.reason


def test_modules_disabled_is_named(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1", "kernel/modules_disabled": "1"},
                   loaded=())
    bad = [r for r in verified(root, "module-loaded") if r.failed]
    assert [(r.subject, r.cause) for r in bad] == [("nf_conntrack", Cause.MODULES_DISABLED)]


@pytest.mark.parametrize(("unit", "dropin", "cause", "words"), [
    (ML, "[Service]\nExecStart=\nExecStart=/bin/true\n", "exec-replaced",
     "ExecStart= runs /bin/true, not systemd-modules-load"),
    (ML, "[Unit]\nConditionPathExists=/etc/never-there\n", "condition-failed",
     "fails: ConditionPathExists=/etc/never-there"),
    (ML, "[Unit]\nAssertPathIsDirectory=/etc/never-there\n", "condition-failed",
     "systemd fails the unit"),
    (SC, "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-sysctl --prefix=/net/ipv4\n",
     "exec-replaced", "leaves out net.netfilter.nf_conntrack_tcp_be_liberal"),
    (SC, "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-sysctl /etc/sysctl.d/x.conf\n",
     "exec-replaced", "reads only /etc/sysctl.d/x.conf"),
    (SC, "[Service]\nExecStart=\nExecStart=/bin/false\nExecStart=/lib/systemd/systemd-sysctl\n",
     "exec-replaced", "/bin/false runs first"),
    (SC, "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-sysctl --prefix=/proc/sys/net\n",
     "exec-replaced", "leaves out"),
    (ML, "[Service]\nExecStartPre=/bin/false\n", "exec-replaced", "/bin/false runs first"),
    (ML, "[Service]\nExecCondition=/usr/bin/false\n", "exec-replaced", "runs first"),
    (ML, "[Service]\nProtectKernelModules=yes\n", "exec-replaced",
     "ProtectKernelModules=yes"),
    (SC, "[Service]\nProtectKernelTunables=true\n", "exec-replaced",
     "ProtectKernelTunables=true"),
    (SC, "[Service]\nUser=nobody\n", "exec-replaced", "User=nobody"),
    (ML, "[Service]\nExecStart=\nExecStart=- /lib/systemd/systemd-modules-load\n"
         "ExecStop=/bin/true\n", "exec-replaced", "no ExecStart= left"),
    (ML, "[Service]\nType=simple\nExecStart=/bin/true\n", "exec-replaced",
     "Type=simple with 2 ExecStart= commands"),
    (SC, "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-sysctl "
         "/tmp/90-nftune.conf\n", "exec-replaced", "reads only /tmp/90-nftune.conf"),
])
def test_unit_drop_ins_that_stop_the_work(image: Path, capsys: pytest.CaptureFixture[str],
                                          unit: str, dropin: str, cause: str,
                                          words: str) -> None:
    write(image, f"{ETC}/{unit}.d/50-hardening.conf", dropin)
    rc, out, crc, head = verdict(image, capsys)
    assert rc == 1 and crc == 1
    [bad] = [x for x in out.splitlines() if x.startswith("failed: unit-work")]
    assert bad.startswith(f"failed: unit-work {unit}") and f"[{cause}]" in bad, bad
    assert words in bad and "50-hardening.conf:" in bad, bad
    assert head.startswith(f"NOT proven [{cause}]: "), head


def test_what_the_units_still_do(image: Path) -> None:
    """A prefix that covers the keys, a reset to the same program, "-" before a failing
    command, a trigger that holds, conditions reset by an empty assignment."""
    for unit, text in (
            (SC, "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-sysctl --prefix=net."
                 "netfilter --prefix=/kernel\n"),
            (SC, "[Service]\nExecStart=\nExecStart=-/bin/false\n"
                 "ExecStart=@/lib/systemd/systemd-sysctl systemd-sysctl --strict\n"),
            (ML, "[Unit]\nConditionPathExists=|/etc/never-there\n"),
            (ML, "[Unit]\nConditionPathExists=/etc/never-there\nConditionCapability=\n"),
            (ML, "[Unit]\nConditionPathExists=!/etc/never-there\n")):
        write(image, f"{ETC}/{unit}.d/50-x.conf", text)
        got = verified(Root(image), "unit-work")
        assert all(r.status is Status.PASSED for r in got), [r.line() for r in got]
        os.unlink(image / f"etc/systemd/system/{unit}.d/50-x.conf")


@pytest.mark.parametrize("dropin", [
    "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-sysctl \"--prefix=/net\"\n",
    "[Service]\nSystemCallFilter=~@module\n",
    "[Service]\nExecStartPre=/lib/systemd/systemd-modules-load\n",
])
def test_what_nftune_does_not_read_is_named(image: Path, dropin: str) -> None:
    write(image, f"{ETC}/{SC}.d/50-x.conf", dropin)
    [_, r] = verified(Root(image), "unit-work")
    assert (r.status, r.cause) == (Status.SKIPPED, Cause.NOT_EVALUATED), r.line()
    assert "50-x.conf:" in r.reason


def test_a_reset_with_nothing_after_cannot_load_the_unit(
        image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(image, f"{ETC}/{ML}.d/50-x.conf", "[Service]\nExecStart=\n")
    rc, _, _, head = verdict(image, capsys)
    assert rc == 1 and "[unit-masked]" in head and "no ExecStart= left" in head


def test_conditions_nftune_cannot_evaluate_offline_are_named(image: Path) -> None:
    write(image, f"{ETC}/{ML}.d/50-x.conf",
          "[Unit]\nConditionKernelCommandLine=!nomodules\nConditionHost=node-1\n")
    [r, _] = verified(Root(image), "unit-work")
    assert (r.status, r.cause) == (Status.SKIPPED, Cause.NOT_EVALUATED)
    assert "ConditionKernelCommandLine=!nomodules" in r.reason
    assert "ConditionHost=node-1" in r.reason


def test_live_conditions_read_the_machine(tree: Path, commands: Commands) -> None:
    """In a container without CAP_SYS_MODULE systemd skips systemd-modules-load; /proc/sys
    is judged by PID 1's mounts (nftune's own sandbox has it read-only): a container's
    read-only /proc/sys with a writable /proc/sys/net (its own network) passes."""
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/proc/1/status", "Name:\tsystemd\nCapBnd:\t00000000a80425fb\n")
    mounts = (tree / "proc/1/mountinfo").read_text()
    write(tree, "/proc/1/mountinfo", mounts +
          "30 23 0:21 /sys /proc/sys ro,nosuid - proc proc rw\n"
          "31 30 0:21 /sys/net /proc/sys/net rw,nosuid - proc proc rw\n")
    [r, s] = verified(root, "unit-work")
    assert (r.subject, r.cause) == (ML, Cause.CONDITION_FAILED)
    assert "ConditionCapability=CAP_SYS_MODULE" in r.reason
    assert r.hint is not None and "CAP_SYS_MODULE" in r.hint  # systemd's own line
    assert s.status is Status.PASSED
    write(tree, "/proc/1/mountinfo", mounts + "30 23 0:21 /sys /proc/sys ro - proc proc rw\n")
    [_, s] = verified(root, "unit-work")
    assert (s.subject, s.cause) == (SC, Cause.CONDITION_FAILED)
    assert "ConditionPathIsReadWrite=/proc/sys/net/" in s.reason


def test_an_admin_s_own_condition_line_is_to_be_deleted() -> None:
    """The container hints are for the lines systemd ships; a drop-in's is the admin's."""
    from nftune.checks.work import _condition_hint

    shipped = _condition_hint(ML, "ConditionCapability", f"/lib/systemd/system/{ML}:12")
    assert "CAP_SYS_MODULE" in shipped
    assert _condition_hint(ML, "AssertCapability", f"/usr/lib/systemd/system/{ML}:3") == \
        shipped
    assert _condition_hint(ML, "ConditionCapability", f"/etc/systemd/system/{ML}.d/x.conf:2"
                           ) == "delete that line"
    assert _condition_hint(ML, "ConditionHost", f"/lib/systemd/system/{ML}:12") == \
        "delete that line"


@pytest.mark.parametrize(("rule", "status"), [
    ('SUBSYSTEM=="module", RUN="/bin/true"', Status.FAILED),
    ('ACTION=="add", SUBSYSTEM=="module", KERNEL=="nf_*", RUN:="/bin/true"', Status.FAILED),
    ('SUBSYSTEM=="module", ATTR{refcnt}=="0", RUN="/bin/true"', Status.SKIPPED),
    ('SUBSYSTEM=="net", RUN="/bin/true"', Status.PASSED),
    ('SUBSYSTEM=="module", KERNEL!="nf_conntrack", RUN="/bin/true"', Status.PASSED),
    ('SUBSYSTEM=="module", OPTIONS+="last_rule"', Status.PASSED),
    ('SUBSYSTEM=="module", RUN+="/bin/true"', Status.PASSED),
    ('SUBSYSTEM=="module",, RUN="/bin/true",', Status.FAILED),  # udev skips the commas
    ('SUBSYSTEM=="module", \\\n  RUN="/bin/true"', Status.FAILED),  # a continued line
    ('KERNEL=="nf_conntrac[^x]", RUN="/bin/true"', Status.FAILED),  # glibc's negation
    ('SUBSYSTEM=="module", RUN="/bin/true" junk', Status.SKIPPED),  # not parsed: named
])
def test_the_safety_net_is_reached(image: Path, rule: str, status: Status) -> None:
    """udev applies every line of every file (there is no last_rule since 2009); a later
    RUN= or an earlier RUN:= that matches the event is what stops nftune's RUN+=."""
    name = "99-late.rules" if "RUN=" in rule else "10-early.rules"
    write(image, f"/etc/udev/rules.d/{name}", f"# site\n{rule}\n")
    [r] = verified(Root(image), "safety-net")
    assert r.status is status, r.line()
    if status is not Status.PASSED:
        assert r.source == f"/etc/udev/rules.d/{name}:2"


def test_an_unreadable_rules_file_is_named(image: Path) -> None:
    (image / "etc/udev/rules.d").mkdir(parents=True, exist_ok=True)
    os.mkfifo(image / "etc/udev/rules.d/50-fifo.rules")
    [r] = verified(Root(image), "safety-net")
    assert (r.status, r.cause) == (Status.FAILED, Cause.UNREADABLE)


@pytest.mark.parametrize(("cmd", "effect"), [
    ("/bin/true", "nothing"), ("true", "nothing"), ("/usr/bin/false", "fails"),
    ("/sbin/modprobe --ignore-install nf_conntrack $CMDLINE_OPTS", "loads"),
    ("/usr/sbin/modprobe -i nf-conntrack", "loads"),
    ("/sbin/modprobe --ignore-install nf_nat", "unknown"),
    ("/sbin/modprobe nf_conntrack", "unknown"),
    ("/sbin/modprobe --ignore-install nf_conntrack; /bin/true", "unknown"),
    ("/opt/x/true", "unknown"), ("'/bin/true'", "unknown"), ("", "unknown"),
])
def test_install_commands_are_read_never_run(cmd: str, effect: str) -> None:
    assert command_effect(cmd, "nf_conntrack") == effect


def test_unit_files_are_read_through_the_tree(tree: Path, commands: Commands) -> None:
    """A drop-in that is a FIFO is not read (the unit tree names it)."""
    add_kernel(tree, "6.1.0-test")
    add_units(tree)
    (tree / f"etc/systemd/system/{ML}.d").mkdir(parents=True)
    os.mkfifo(tree / f"etc/systemd/system/{ML}.d/x.conf")
    ctx = context(Root(tree), commands)
    from nftune.checks.work import unit_work

    assert {r.subject for r in unit_work(ctx)} == {ML, SC}


def test_the_docs_example_is_what_verify_prints(image: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The example line of docs/proof.md, with this tree where it says /srv/image."""
    from readme import block

    write(image, "/etc/modprobe.d/50-hardening.conf",
          "# CIS-style hardening\nblacklist nf_conntrack\n")
    rc, out, crc, head = verdict(image, capsys)
    [line] = [x for x in out.splitlines() if x.startswith("failed: module-insert")]
    assert [line.replace(str(image), "/srv/image")] == block(
        "failed: module-insert nf_conntrack [blacklisted]: blacklisted by "
        "/srv/image/etc/modprobe.d/50-hardening.conf:2: systemd-modules-load probes with the "
        "blacklist applied and skips it")
    assert (rc, crc) == (1, 1) and head.startswith("NOT proven [blacklisted]: ")


def test_a_softdep_chain_of_any_length_is_bounded(image: Path) -> None:
    """Each softdep names a module with an install command and the next softdep. Softdeps
    are not required, so kmod inserts nf_conntrack whatever they do, and verify's planner
    says so without following them; the full plan (modprobe's) stops at 64 and says it
    cannot tell, never a RecursionError."""
    lines = [f"install m{i} /bin/true\nsoftdep m{i} pre: m{i + 1}" for i in range(3000)]
    write(image, "/etc/modprobe.d/x.conf",
          "softdep nf_conntrack pre: m0\n" + "\n".join(lines) + "\n")
    [r] = verified(Root(image), "module-insert")
    assert r.status is Status.PASSED
    root = Root(image)
    [kernel] = read_kernels(root)[0]
    full = Kmod(ModprobeD.load(root, cmdline=False), KernelData(root, kernel))
    v = kmod_verdict(root, full, "nf_conntrack")
    assert (v.effect, v.kind) == ("unknown", "unread") and "deeper than 64" in v.why


def test_an_alias_of_the_module_s_own_name_gives_its_options_once(image: Path) -> None:
    """kmod_module_get_options() takes an options line for the module's name or for the
    alias it was found under: one line, once, when the two are the same. Found by the
    modprobe differential (seed 313963, bookworm's kmod 30, the alias in a .alias file)."""
    write(image, "/etc/modprobe.d/a.conf", "alias nf_conntrack nf_conntrack\n")
    write(image, "/etc/modprobe.d/z.conf", "options nf-conntrack hashsize=65536\n")
    root = Root(image)
    [kernel] = read_kernels(root)[0]
    plan = Kmod(ModprobeD.load(root, cmdline=False), KernelData(root, kernel)).plan(
        "nf_conntrack")
    [insmod] = [s.shown() for s in plan.steps if "nf_conntrack" in s.shown()]
    assert insmod.endswith("nf_conntrack.ko.xz hashsize=65536"), insmod


def test_exec_stop_alone_keeps_the_unit_but_not_the_work(image: Path) -> None:
    write(image, f"{ETC}/{SC}.d/50-x.conf", "[Service]\nExecStart=\nExecStop=/bin/true\n")
    [_, r] = verified(Root(image), "unit-work")
    assert (r.subject, r.cause) == (SC, Cause.EXEC_REPLACED)
    assert "no ExecStart= left" in r.reason and "50-x.conf:2 resets it" in r.reason


def test_a_path_nftune_may_not_resolve_is_not_evaluated(image: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """In nftune's own sandbox (no CAP_DAC_OVERRIDE) a path can be EACCES: the condition is
    named, and nothing ends the run."""
    write(image, f"{ETC}/{ML}.d/50-x.conf", "[Unit]\nConditionPathExists=/root/site/flag\n")
    real = Root.chase

    def chase(self: Root, path: str) -> str:
        if path.startswith("/root/"):
            raise PermissionError(13, "Permission denied")
        return real(self, path)

    monkeypatch.setattr(Root, "chase", chase)
    [r, _] = verified(Root(image), "unit-work")
    assert (r.status, r.cause) == (Status.SKIPPED, Cause.NOT_EVALUATED)
    assert "ConditionPathExists=/root/site/flag" in r.reason


def test_a_certain_rule_is_named_before_an_uncertain_one(image: Path) -> None:
    write(image, "/etc/udev/rules.d/10-early.rules",
          'SUBSYSTEM=="module", ATTR{x}=="1", RUN:="/bin/true"\n'
          'SUBSYSTEM=="module", RUN:="/bin/true"\n')
    [r] = verified(Root(image), "safety-net")
    assert (r.status, r.cause) == (Status.FAILED, Cause.RUN_CLEARED)
    assert r.source == "/etc/udev/rules.d/10-early.rules:2"
