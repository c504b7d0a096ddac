"""The seams tests use are main()'s keywords and the Context's: nothing in nftune/ reaches
the real runner but the CLI, and no test patches a module of nftune's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import Commands, context

from nftune.cli import main
from nftune.context import Context
from nftune.errors import NftuneError
from nftune.root import Root

TOP = Path(__file__).resolve().parents[1]


def imports_of_run(path: Path) -> list[str]:
    """How a module reaches nftune.run's run(): `from .run import run`, `from . import run`
    or `import nftune.run`, in any spelling."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {a.name for a in node.names}
            if (module.endswith("run") and "run" in names) or \
                    (module in ("", "nftune") and "run" in names):
                found.append(f"line {node.lineno}")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}" for a in node.names if a.name == "nftune.run"]
    return found


def test_only_the_cli_binds_the_real_runner() -> None:
    users = {str(p.relative_to(TOP)): imports_of_run(p)
             for p in (TOP / "nftune").rglob("*.py")}
    assert {p: lines for p, lines in users.items() if lines} == {
        "nftune/cli.py": users["nftune/cli.py"]}
    assert len(users["nftune/cli.py"]) == 1


def test_the_guard_sees_every_spelling(tmp_path: Path) -> None:
    for code in ("from .run import run", "from . import run", "from nftune.run import run",
                 "import nftune.run", "from .run import run as go"):
        (tmp_path / "m.py").write_text(code + "\n")
        assert imports_of_run(tmp_path / "m.py"), code


def test_no_test_patches_the_runner_the_bus_or_the_root() -> None:
    """Those are main()'s and the Context's to give (two tests still patch a module of
    nftune's on purpose: which file systems count as the kernel's, and the unit model
    that test_unitdiff breaks to show that the differential notices)."""
    patched = re.compile(r"monkeypatch[.]setattr[(][^)]*"
                         r"(\"nftune[.]|'nftune[.]|[^a-z_]run[^a-z_]|from_arg|Systemd|bus)")
    for p in (TOP / "tests").glob("*.py"):
        assert not patched.search(p.read_text()), p.name


def test_a_context_without_a_runner_runs_nothing(tree: Path) -> None:
    with pytest.raises(NftuneError, match="no runner given"):
        Context(Root(tree)).run(["true"])
    ctx = context(Root(tree), Commands())
    with pytest.raises(AssertionError, match="unexpected command"):
        ctx.run(["modprobe", "x"])


def test_main_takes_its_seams(tree: Path, commands: Commands) -> None:
    """A tree that plays the running system, a runner that records, a bus that is not
    there: apply runs the commands a node would, verify reports no-bus."""
    (tree / "lib/modules/6.1.0-test").mkdir(parents=True)
    (tree / "lib/modules/6.1.0-test/modules.dep").write_text(
        "kernel/net/netfilter/nf_conntrack.ko.xz:\n")
    (tree / "usr/lib/systemd").mkdir(parents=True)
    (tree / "usr/lib/systemd/systemd-sysctl").write_text("")
    commands.allow("modprobe", "systemd-sysctl")
    host = Root(tree, live=True)

    def no_bus(address: str | None) -> object:
        raise NftuneError("no bus here")

    assert main(["apply"], host=host, runner=commands, bus_factory=no_bus) == 0
    assert [c[0].rsplit("/", 1)[-1] for c in commands.calls] == ["modprobe", "systemd-sysctl"]
    assert main(["verify", "--check", "boot"], host=host, runner=commands,
                bus_factory=no_bus) == 1
