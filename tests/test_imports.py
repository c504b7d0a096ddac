"""Import budgets: each command imports only what its budget lists (issue 14). Start-up is
most of what a short nftune run costs, in the binary as in a venv, so a new import on a
command's path has to be added here, on purpose.

Standard-library and third-party modules are listed by top-level package (C accelerators,
"_x", follow their module); nftune's own modules by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# What `import nftune.cli; main(argv)` imports beyond the interpreter's own start.
RUN = """
import os, sys
before = set(sys.modules)
from nftune.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
with open(os.environ["NFTUNE_IMPORTS_OUT"], "w") as f:
    f.write("\\n".join(sorted(set(sys.modules) - before)))
"""

CORE = {"__future__", "errno"}
# Reading a tree: argparse (with gettext and locale; not shutil, see cli._formatter),
# collections for the records, ctypes for openat2, weakref (and its atexit) for the tree's
# descriptor, fnmatch for globs. Neither typing nor pathlib (with urllib and ipaddress):
# each cost more than any of nftune's own modules.
TREE = CORE | {
    "argparse", "atexit", "collections", "contextlib", "copyreg", "ctypes", "enum", "fcntl",
    "fnmatch", "functools", "gettext", "itertools", "keyword", "locale", "operator", "re",
    "reprlib", "struct", "types", "warnings", "weakref",
}
# pystemd's Cython bus, and what it imports itself (pprint brings dataclasses and inspect).
PYSTEMD = {
    "pystemd", "cython_runtime", "pprint", "dataclasses", "inspect", "ast", "dis", "opcode",
    "token", "tokenize", "linecache", "importlib", "copy", "shlex", "uuid", "platform",
    "pathlib", "urllib", "ipaddress", "ntpath", "typing", "shutil", "bz2", "lzma", "zlib",
}
OWN_CORE = {"nftune", "nftune.cli", "nftune.console", "nftune.errors"}
OWN_TREE = OWN_CORE | {f"nftune.{m}" for m in (
    "artifacts", "attrs", "chase", "conffiles", "config", "config.model", "config.values",
    "context", "cpus", "fsio", "ini", "record", "result", "root", "rps",
    "rps.decide", "rps.sysfs", "sysctl", "text")}
OWN_VERIFY = OWN_TREE | {f"nftune.{m}" for m in (
    "checks", "checks.container", "checks.files", "checks.ordering", "checks.owned",
    "checks.rps", "checks.runtime", "checks.work", "glob", "implicit", "kernel", "kmod", "modprobe",
    "ordering",
    "rps.view", "specs", "udev", "unitgraph", "unitnames", "units", "unitwork", "verify",
    "checks.nodesysctl", "sysctlkeys", "sysctldata")}
# Only a live verify talks to systemd, reads the journal, and looks for kube-proxy.
OWN_LIVE = OWN_VERIFY | {f"nftune.{m}" for m in (
    "cache", "checks.boot", "journal", "publish", "report", "run", "systemd", "timespan",
    "treewrite",
    "checks.kubeproxy", "kubeproxy", "kubeproxy.discover", "kubeproxy.model",
    "kubeproxy.parse", "conntrack", "conntrack.machine", "conntrack.record", "conntrack.size",
    "conntrack.view")}

BUDGETS: dict[str, tuple[set[str], set[str]]] = {
    "--version": (CORE, OWN_CORE),
    "verify": (TREE, OWN_VERIFY),
    # The report, the journal (a socket; journalctl for a unit's messages), Prometheus,
    # and the bus.
    "verify --service": (TREE | PYSTEMD | {"json", "socket", "select", "selectors", "array",
                                           "math", "subprocess", "signal", "threading"},
                         OWN_LIVE),
    "rps apply": (TREE, OWN_TREE | {"nftune.rps.write"}),
    # Only rendering pays for Jinja2 (and what it imports: hashlib, pickle, tempfile, ...).
    "apply": (TREE | {"jinja2", "markupsafe", "json", "hashlib", "pickle", "random",
                      "tempfile", "threading", "bisect", "numbers", "math", "string",
                      "encodings", "inspect", "ast", "dis", "opcode", "token", "tokenize",
                      "linecache", "importlib", "urllib", "ipaddress", "typing", "shutil",
                      "bz2", "lzma", "zlib"},
              OWN_TREE | {"nftune.apply", "nftune.kernel", "nftune.lock", "nftune.render",
                          "nftune.rps.write", "nftune.run", "nftune.treewrite", "nftune.udev",
                          "nftune.glob"}),
}
NEVER_WITHOUT_RENDERING = {"jinja2", "markupsafe", "lxml", "psutil"}


def imported(argv: list[str], tmp_path: Path) -> set[str]:
    out = tmp_path / "imports"
    subprocess.run([sys.executable, "-c", RUN, *argv], capture_output=True, check=False,
                   env={**os.environ, "NFTUNE_IMPORTS_OUT": str(out)}, timeout=60)
    return set(out.read_text().split())


def over_budget(command: str, modules: set[str]) -> list[str]:
    """What `command` imported that its budget does not list."""
    other, own = BUDGETS[command]
    tops = {m.split(".")[0] for m in modules if not m.startswith(("nftune", "_"))}
    return sorted(tops - other) + sorted(
        m for m in modules if m.startswith("nftune") and m not in own)


def argv_of(command: str, tree: Path) -> list[str]:
    return {
        "--version": ["--version"],
        "verify": ["verify", "--root", str(tree)],
        # The live path without a manager to reach: the bus is opened, fails, is reported.
        "verify --service": ["verify", "--service", "--root", str(tree), "--bus-address",
                             f"unix:path={tree}/no-bus"],
        "rps apply": ["rps", "apply", "--root", str(tree)],
        "apply": ["apply", "--root", str(tree)],
    }[command]


@pytest.mark.parametrize("command", list(BUDGETS))
def test_command_imports_only_its_budget(command: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    if command != "apply":
        subprocess.run([sys.executable, "-m", "nftune", "apply", "--root", str(tree)],
                       capture_output=True, check=True)
    modules = imported(argv_of(command, tree), tmp_path)
    assert "nftune.cli" in modules  # the command ran
    assert over_budget(command, modules) == []
    if command != "apply":
        assert not modules & NEVER_WITHOUT_RENDERING


def test_a_module_over_budget_is_caught(tmp_path: Path) -> None:
    """The guard itself: json on the offline verify path would fail the budget."""
    assert over_budget("verify", {"nftune.cli", "json", "json.decoder"}) == ["json"]
    assert over_budget("--version", {"nftune.cli", "nftune.render"}) == ["nftune.render"]
