"""The offline unit graph: systemd's implicit edges, aliases, templates, drop-in and .wants/
precedence, search-path order per version, and what it says it cannot model. Each rule here
is also exercised against a real systemd by tests/unitdiff.py (test_unitdiff.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import LIB, add_boot, ordering, write

from nftune.chain import build_chain
from nftune.context import Context
from nftune.ordering import FileGraph, prove
from nftune.result import Cause, Status
from nftune.root import Root
from nftune.unitnames import _name_dirs, mount_path
from nftune.units import UnitTree

ETC = "/etc/systemd/system"
ML, SC = "systemd-modules-load.service", "systemd-sysctl.service"
ONESHOT = "[Service]\nType=oneshot\nExecStart=/bin/true\n"


@pytest.fixture
def units(tree: Path) -> Path:
    add_boot(tree)
    return tree


def graph(tree: Path, version: int | None = None) -> FileGraph:
    return FileGraph(UnitTree(Root(tree), version))


def after(g: FileGraph, unit: str) -> dict[str, str]:
    return g.after.get(g.id(unit), {})


def agent(tree: Path, where: str = ETC, name: str = "some-agent.service",
          body: str = "") -> None:
    write(tree, f"{where}/{name}", f"[Unit]\n{body}{ONESHOT}")


def enable(tree: Path, unit: str, target: str = "multi-user.target") -> None:
    wants = tree / f"etc/systemd/system/{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    os.symlink(f"{ETC}/{unit}", wants / unit)


def test_the_issue_case_a_dropin_after_an_ordinary_service_is_a_cycle(units: Path) -> None:
    agent(units)
    enable(units, "some-agent.service")
    dropin = f"{ETC}/{ML}.d/50-agent.conf"
    write(units, dropin, "[Unit]\nAfter=some-agent.service\n")
    p = prove(graph(units))
    assert p.cause is Cause.ORDERING_CYCLE
    steps = {(e.unit, e.source) for e in p.cycle}
    assert (ML, f"{dropin}:2") not in steps  # the drop-in orders ML *after* the agent
    assert ("some-agent.service", f"{dropin}:2") in steps
    assert any("DefaultDependencies=yes (service_add_default_dependencies)" in s
               for _, s in steps)
    assert "sysinit.target" in p.reason and p.source == f"{dropin}:2"
    r = ordering(Context(Root(units)))
    assert (r.status, r.cause) == (Status.FAILED, Cause.ORDERING_CYCLE)
    assert "DefaultDependencies=no" in (r.hint or "")


def test_a_unit_the_boot_does_not_start_orders_nothing(units: Path) -> None:
    """The same drop-in with the agent not enabled: it is loaded (named) but never started,
    so it orders nothing; a real systemd 252 runs modules-load normally then."""
    agent(units)
    write(units, f"{ETC}/{ML}.d/50-agent.conf", "[Unit]\nAfter=some-agent.service\n")
    g = graph(units)
    assert "some-agent.service" in g.state and "some-agent.service" not in (g.jobs or ())
    assert prove(g).cause is Cause.OK


def test_default_dependencies_no_breaks_no_cycle(units: Path) -> None:
    agent(units, body="DefaultDependencies=no\n")
    enable(units, "some-agent.service")
    write(units, f"{ETC}/{ML}.d/50-agent.conf", "[Unit]\nAfter=some-agent.service\n")
    assert prove(graph(units)).cause is Cause.OK


@pytest.mark.parametrize(("unit", "text", "edges"), [
    ("a.service", ONESHOT, {"After": {"sysinit.target", "basic.target",
                                      "systemd-journald.socket", "system.slice"},
                            "Before": {"shutdown.target"}}),
    ("a.socket", "[Socket]\nListenStream=/run/a.sock\n",
     {"After": {"sysinit.target"}, "Before": {"sockets.target", "shutdown.target",
                                              "a.service"}}),
    ("a.timer", "[Timer]\nOnCalendar=daily\n",
     {"After": {"sysinit.target", "time-sync.target", "time-set.target"},
      "Before": {"timers.target", "shutdown.target", "a.service"}}),
    ("a.path", "[Path]\nPathExists=/x\nUnit=b.service\n",
     {"After": {"sysinit.target"}, "Before": {"paths.target", "b.service"}}),
    ("srv.mount", "[Mount]\nWhat=tmpfs\nWhere=/srv\nType=tmpfs\n",
     {"After": {"local-fs-pre.target", "swap.target", "-.mount"},
      "Before": {"local-fs.target", "umount.target"}}),
    ("srv-net.mount", "[Mount]\nWhat=h:/x\nWhere=/srv/net\nType=nfs\n",
     {"After": {"remote-fs-pre.target", "network.target", "network-online.target"},
      "Before": {"remote-fs.target"}}),
    ("a.target", "", {"Before": {"shutdown.target"}}),
])
def test_what_default_dependencies_add_per_type(units: Path, unit: str, text: str,
                                                edges: dict[str, set[str]]) -> None:
    write(units, f"{ETC}/{unit}", f"[Unit]\n{text}")
    g = FileGraph(UnitTree(Root(units), 252), also=(unit,))
    assert edges.get("After", set()) <= set(after(g, unit)), sorted(after(g, unit))
    for other in edges.get("Before", set()):
        assert unit in after(g, other), (other, sorted(after(g, other)))


def test_timer_time_set_only_from_systemd_248(units: Path) -> None:
    write(units, f"{ETC}/a.timer", "[Unit]\n[Timer]\nOnCalendar=daily\n")
    assert "time-set.target" not in after(FileGraph(UnitTree(Root(units), 247),
                                                    also=("a.timer",)), "a.timer")


def test_a_target_is_after_what_it_pulls_in_unless_either_opts_out(units: Path) -> None:
    agent(units, name="a.service")
    agent(units, name="b.service", body="DefaultDependencies=no\n")
    agent(units, name="c.service", body="Before=app.target\n")
    agent(units, name="d.service")
    write(units, f"{ETC}/app.target", "[Unit]\nWants=a.service b.service c.service\n")
    os.makedirs(units / "etc/systemd/system/app.target.requires")
    os.symlink(f"{ETC}/d.service", units / "etc/systemd/system/app.target.requires/d.service")
    os.makedirs(units / "etc/systemd/system/multi-user.target.wants")
    os.symlink(f"{ETC}/app.target", units / "etc/systemd/system/multi-user.target.wants/app.target")
    g = graph(units)
    a = after(g, "app.target")
    assert "target_add_default_dependencies" in a["a.service"]
    assert "b.service" not in a  # DefaultDependencies=no
    assert "target_add_default_dependencies" not in a["c.service"]  # its own Before=
    assert "app.target.requires/d.service" in a["d.service"]
    write(units, f"{ETC}/app.target", "[Unit]\nDefaultDependencies=no\nWants=a.service\n")
    assert "a.service" not in after(graph(units), "app.target")


def test_units_the_boot_never_loads_add_no_edges(units: Path) -> None:
    """An unreferenced unit's Before= is not in systemd's graph (it is never loaded)."""
    write(units, f"{ETC}/{SC}", (units / LIB.lstrip("/") / SC).read_text()
          .replace(f"After={ML}\n", ""))
    agent(units, name="bridge.service", body=f"DefaultDependencies=no\nAfter={ML}\n"
          f"Before={SC}\n")
    assert prove(graph(units)).cause is Cause.ORDERING_BROKEN
    os.makedirs(units / "etc/systemd/system/sysinit.target.wants")
    os.symlink(f"{ETC}/bridge.service",
               units / "etc/systemd/system/sysinit.target.wants/bridge.service")
    p = prove(graph(units))
    assert p.cause is Cause.OK and p.path == (ML, "bridge.service", SC)


def test_an_alias_is_the_unit_it_names_with_its_dropins(units: Path) -> None:
    agent(units, name="real.service", body="DefaultDependencies=no\n")
    os.symlink("real.service", units / "etc/systemd/system/nick.service")
    enable(units, "nick.service", "sysinit.target")
    write(units, f"{ETC}/nick.service.d/x.conf", f"[Unit]\nBefore={SC}\nAfter={ML}\n")
    write(units, f"{ETC}/{SC}", (units / LIB.lstrip("/") / SC).read_text()
          .replace(f"After={ML}\n", "After=nick.service\n"))
    g = graph(units)
    assert g.id("nick.service") == "real.service"
    p = prove(g)
    assert p.cause is Cause.OK and p.path == (ML, "real.service", SC)


@pytest.mark.parametrize("link", ["/dev/null", "/opt/outside/real.service", "loop.service"])
def test_links_that_are_not_aliases(units: Path, link: str) -> None:
    os.symlink(link, units / "etc/systemd/system/loop.service")
    g = graph(units)
    assert g.id("loop.service") == "loop.service"


def test_an_alias_loop_ends(units: Path) -> None:
    os.symlink("b.service", units / "etc/systemd/system/a.service")
    os.symlink("a.service", units / "etc/systemd/system/b.service")
    write(units, f"{ETC}/{ML}.d/x.conf", "[Unit]\nWants=a.service\n")
    assert prove(graph(units)).cause is Cause.OK


def test_a_template_instance_gets_both_dropin_directories(units: Path) -> None:
    write(units, f"{LIB}/hop@.service", f"[Unit]\nDefaultDependencies=no\n{ONESHOT}")
    write(units, f"{LIB}/hop@.service.d/a.conf", f"[Unit]\nAfter={ML}\n")
    write(units, f"{ETC}/hop@x.service.d/b.conf", f"[Unit]\nBefore={SC}\n")
    write(units, f"{ETC}/{SC}", (units / LIB.lstrip("/") / SC).read_text()
          .replace(f"After={ML}\n", ""))
    os.makedirs(units / "etc/systemd/system/sysinit.target.wants")
    os.symlink(f"{LIB}/hop@.service",
               units / "etc/systemd/system/sysinit.target.wants/hop@x.service")
    p = prove(graph(units))
    assert p.cause is Cause.OK and p.path == (ML, "hop@x.service", SC)
    assert after(graph(units), "hop@x.service")["system-hop.slice"]


def test_name_directories_follow_unit_file_find_dirs() -> None:
    assert _name_dirs("foo-bar@baz.service") == (
        "foo-bar@baz.service", "foo-bar@.service", "foo-.service", "foo-@baz.service",
        "foo-@.service")
    assert _name_dirs("a-b-c.service") == ("a-b-c.service", "a-b-.service", "a-.service")


def test_a_dropin_name_is_won_by_the_earlier_search_path_entry(units: Path) -> None:
    """/etc's dashed-prefix directory beats /usr/lib's unit-specific one for one name."""
    write(units, f"{LIB}/{SC}.d/50-x.conf", "[Unit]\nAfter=late.target\n")
    write(units, f"{ETC}/systemd-.service.d/50-x.conf", "[Unit]\nDescription=x\n")
    assert "late.target" not in after(graph(units), SC)
    write(units, "/etc/systemd/system.control/systemd-sysctl.service.d/60-y.conf",
          "[Unit]\nAfter=ctl.target\n")
    write(units, "/run/systemd/transient/systemd-sysctl.service.d/70-z.conf",
          "[Unit]\nAfter=tr.target\n")
    a = after(graph(units), SC)
    assert "system.control" in a["ctl.target"] and "transient" in a["tr.target"]


def test_wants_directories_with_dashed_and_masked_entries(units: Path) -> None:
    agent(units, name="x.service")
    os.makedirs(units / "etc/systemd/system/multi-.target.wants")
    os.symlink(f"{ETC}/x.service", units / "etc/systemd/system/multi-.target.wants/x.service")
    assert "x.service" in after(graph(units), "multi-user.target")
    os.makedirs(units / "run/systemd/system/multi-user.target.wants")
    os.symlink("/dev/null", units / "run/systemd/system/multi-user.target.wants/x.service")
    assert "x.service" in after(graph(units), "multi-user.target")  # /etc's entry wins
    os.symlink("/dev/null", units / "etc/systemd/system/multi-user.target.wants")
    assert "x.service" in after(graph(units), "multi-user.target")  # not a directory


def test_lib_is_searched_before_usr_lib_until_257(units: Path) -> None:
    write(units, f"/lib/systemd/system/{SC}", "[Unit]\nDefaultDependencies=no\n" + ONESHOT)
    assert prove(graph(units, 252)).cause is Cause.ORDERING_BROKEN
    assert prove(graph(units, 257)).cause is Cause.OK


def test_a_service_left_without_exec_start_is_not_loaded(units: Path) -> None:
    """service_verify() refuses it: "Service has no ExecStart=, ExecStop=, or
    SuccessAction=. Refusing." A reset followed by a new command loads."""
    write(units, f"{ETC}/{SC}.d/x.conf", "[Service]\nExecStart=\n")
    p = prove(graph(units))
    assert p.cause is Cause.UNIT_MASKED and "no ExecStart= left" in p.reason
    assert f"{ETC}/{SC}.d/x.conf:2 resets it" in p.reason
    write(units, f"{ETC}/{SC}.d/x.conf", "[Service]\nExecStart=\nExecStart=/bin/true\n")
    assert prove(graph(units)).cause is Cause.OK


def test_requires_mounts_for_orders_after_each_prefix_mount(units: Path) -> None:
    write(units, f"{ETC}/srv.mount", "[Mount]\nWhat=tmpfs\nWhere=/srv\nType=tmpfs\n")
    write(units, f"{ETC}/{ML}.d/m.conf", "[Unit]\nRequiresMountsFor=/srv/data\n")
    g = graph(units)
    assert "RequiresMountsFor=/srv/data" in after(g, ML)["srv.mount"]
    assert "-.mount" in after(g, ML)
    assert mount_path("srv-my\\x2ddata.mount") == "/srv/my-data"
    assert mount_path("-.mount") == "/"


def test_a_hostile_dependency_line_costs_no_more_than_its_length(units: Path) -> None:
    """Names and paths from a file are bounded as systemd bounds them: a name over 255
    characters is not a unit, a path over PATH_MAX is refused, and nothing recurses on them."""
    long_name = "a-" * 60000 + "x.service"
    deep = "/a" * 200000
    write(units, f"{ETC}/{ML}.d/x.conf",
          f"[Unit]\nAfter={long_name}\nRequiresMountsFor={deep} {deep[:4000]}\n")
    write(units, f"{ETC}/a.mount", "[Mount]\nWhat=tmpfs\nWhere=/a\n")
    g = graph(units)
    assert long_name not in g.state
    assert "a.mount" in after(g, ML) and prove(g).cause is Cause.OK


def test_specifiers_resolve_and_unknown_ones_are_dropped(units: Path) -> None:
    write(units, f"{LIB}/w@.service", f"[Unit]\nDefaultDependencies=no\nAfter=pre-%i.service "
          f"%H.service\n{ONESHOT}")
    g = FileGraph(UnitTree(Root(units)), also=("w@db.service",))
    assert "pre-db.service" in after(g, "w@db.service")
    assert not any(u.endswith("%H.service") for u in after(g, "w@db.service"))


def test_generators_and_fstab_are_named_as_not_modelled(units: Path) -> None:
    write(units, "/usr/lib/systemd/system-generators/systemd-getty-generator", "")
    assert prove(graph(units)).unmodelled == ()
    write(units, "/usr/lib/systemd/system-generators/vendor-generator", "")
    write(units, "/etc/fstab", "# comment\n/dev/sdb1 /data ext4 defaults 0 2\n")
    write(units, "/etc/init.d/legacy", "#!/bin/sh\n")
    um = prove(graph(units)).unmodelled
    assert um == ("generator /usr/lib/systemd/system-generators/vendor-generator",
                  "mounts from /etc/fstab (systemd-fstab-generator)",
                  "SysV script /etc/init.d/legacy (systemd-sysv-generator)")
    r = ordering(Context(Root(units)))
    assert r.status is Status.PASSED and "not modelled" in (r.reason or "")


def test_version_is_read_from_the_shared_library(units: Path) -> None:
    write(units, "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so", "")
    assert UnitTree(Root(units)).version == 257


def test_chain_names_the_cycle_edge_by_edge(units: Path) -> None:
    agent(units)
    enable(units, "some-agent.service")
    write(units, f"{ETC}/{ML}.d/50-agent.conf", "[Unit]\nAfter=some-agent.service\n")
    c = build_chain(Context(Root(units)), "multi-user.target", offline=True)
    assert not c.ok and c.verdict.cause is Cause.ORDERING_CYCLE
    lines = c.lines()
    i = lines.index("  the cycle, each unit ordered before the next:")
    assert any(f"some-agent.service < {ML}  ({ETC}/{ML}.d/50-agent.conf:2)" in x
               for x in lines[i:])
    j = c.to_json()["cycle"]
    assert {"unit": "some-agent.service", "before": ML,
            "source": f"{ETC}/{ML}.d/50-agent.conf:2"} in j


# -- what systemd refuses, and hostile trees (an attacker's review) -------------------------

VENDOR_SC = f"{LIB}/{SC}"


@pytest.mark.parametrize("what", ["empty", "fifo", "dir"])
def test_an_empty_or_unreadable_fragment_is_not_a_loaded_unit(units: Path, what: str) -> None:
    p = units / f"etc/systemd/system/{SC}"
    if what == "empty":
        p.write_text("")  # null_or_empty(): masked
    elif what == "fifo":
        os.mkfifo(p)
    else:
        p.mkdir()
    r = prove(graph(units))
    assert r.cause is Cause.UNIT_MASKED, r
    assert ("masked" if what == "empty" else "cannot be loaded") in r.reason


def test_an_alias_loop_loads_neither_name(units: Path) -> None:
    os.symlink("x.service", units / f"etc/systemd/system/{SC}")
    os.symlink(SC, units / "etc/systemd/system/x.service")
    r = prove(graph(units))
    assert r.cause is Cause.UNIT_MASKED and "an alias loop" in r.reason


@pytest.mark.parametrize("sep", ["\x1c", "\xa0", "\u2003", "\x85"])
def test_only_four_whitespace_characters_separate_names(units: Path, sep: str) -> None:
    write(units, f"{ETC}/{SC}", (units / VENDOR_SC.lstrip("/")).read_text()
          .replace(f"After={ML}", f"After={ML}{sep}x.service"))
    assert prove(graph(units)).cause is Cause.ORDERING_BROKEN


def test_an_unparsable_boolean_is_ignored(units: Path) -> None:
    write(units, f"{ETC}/{SC}.d/x.conf", "[Unit]\nDefaultDependencies=\n")
    write(units, f"{ETC}/{ML}.d/x.conf", "[Unit]\nDefaultDependencies=maybe\n")
    assert prove(graph(units)).cause is Cause.OK


def test_hidden_entries_are_skipped(units: Path) -> None:
    write(units, f"{ETC}/{SC}.d/.x.conf", f"[Unit]\nBefore={ML}\n")
    agent(units, name="y.service")
    os.makedirs(units / "etc/systemd/system/multi-user.target.wants")
    os.symlink(f"{ETC}/y.service", units / "etc/systemd/system/multi-user.target.wants/.y.service")
    g = graph(units)
    assert prove(g).cause is Cause.OK and "y.service" not in g.state


def test_sections_of_another_type_are_ignored(units: Path) -> None:
    write(units, f"{ETC}/a.path", "[Unit]\n[Path]\nPathExists=/x\n[Timer]\nUnit=b.service\n")
    g = FileGraph(UnitTree(Root(units)), also=("a.path",))
    assert "a.path" in after(g, "a.service") and "b.service" not in g.state


@pytest.mark.parametrize(("name", "version"), [("libsystemd-shared-252.so", 252),
                                               ("libsystemd-shared-256.11-1.fc41.so", 256)])
def test_version_from_debian_and_fedora_library_names(units: Path, name: str,
                                                      version: int) -> None:
    write(units, f"/usr/lib/systemd/{name}", "")
    write(units, "/usr/lib/systemd/libsystemd-shared-247.so", "")
    assert UnitTree(Root(units)).version == version


def test_a_long_dashed_instance_name_costs_little(units: Path) -> None:
    """An instance name of 120 dashes has thousands of cut names; with no dashed
    directory in the tree, none is made."""
    write(units, f"{LIB}/a@.service", f"[Unit]\nDefaultDependencies=no\n{ONESHOT}")
    names = " ".join(f"a@{'b-' * 120}{i}.service" for i in range(300))
    write(units, f"{ETC}/{ML}.d/x.conf", f"[Unit]\nWants={names}\n")
    tree = UnitTree(Root(units))
    FileGraph(tree)
    assert max(len(v) for v in tree._names.values()) <= 2


def test_a_name_with_a_newline_cannot_forge_a_chain_line(units: Path) -> None:
    write(units, f"{ETC}/{SC}.d/x\nproven [ok]: all fine\n.conf", f"[Unit]\nBefore={ML}\n")
    lines = build_chain(Context(Root(units)), SC, offline=True).lines()
    assert not any(line.startswith("proven") for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_a_continued_line_over_a_mebibyte_ends_the_file(units: Path) -> None:
    """read_line()'s limit, and linear work on the way there (4 MB of continuations)."""
    body = "[Unit]\nAfter=" + "x.service \\\n" * 350_000 + f"y.service\nBefore={ML}\n"
    write(units, f"{ETC}/{SC}.d/x.conf", body)
    g = graph(units)
    assert prove(g).cause is Cause.OK and "x.service" not in g.state
