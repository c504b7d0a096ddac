"""The VM suite catches a broken build: a package whose modules-load file lists no module
boots under qemu, and the suite fails on the assertions that matter, with exit status 1.

Needs root, qemu, mmdebstrap and the .deb in $OUT (default out/); one boot of the bookworm
guest (about 30 s, plus a minute to build its root the first time). tests/run makes a skip
a failure (NFTUNE_REQUIRE_E2E=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import require

from e2e import vm

TOP = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", TOP / "out"))
if not OUT.is_absolute():
    OUT = TOP / OUT
DEBS = sorted(OUT.glob("nftune_*_amd64.deb"))


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if missing := vm.tools_missing():
        return f"missing {', '.join(missing)}"
    if not DEBS:
        return f"no .deb in {OUT}: run 'make deb'"
    return None


require(_why_not(), "NFTUNE_REQUIRE_E2E", "VM suite self-test")


def broken_deb(deb: Path, dest: Path) -> Path:
    """The package with an empty modules-load file: its vendor file lists no module, and
    the configuration it ships resets the list, so postinst's apply writes none either."""
    tree = dest / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    vendor = tree / "usr/lib/modules-load.d/nftune.conf"
    vendor.write_text("".join(line for line in vendor.read_text().splitlines(keepends=True)
                              if line.startswith("#")))
    (tree / "etc/nftune/nftune.conf").write_text("[Modules]\nLoad=\n")
    out = dest / "nftune-broken.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def test_a_package_with_an_empty_modules_load_file_fails_the_suite(tmp_path: Path) -> None:
    deb = broken_deb(DEBS[-1], tmp_path)
    p = subprocess.run([sys.executable, "-m", "e2e", "--release", "bookworm",
                        "--scenario", "offline", "--deb", str(deb),
                        "--logs", str(tmp_path / "logs")],
                       cwd=TOP, capture_output=True, text=True, check=False)
    print(p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert p.returncode == 1
    failed = {line.split()[2].rstrip(":") for line in lines if line.startswith("FAIL ")}
    # The module is not loaded at boot, so the value is lost and verify says so.
    assert {"nf_conntrack-at-boot", "value-at-boot", "verify-exit"} <= failed, p.stdout
    assert lines[-1].endswith(f"{len(failed)} failed")
    assert (tmp_path / "logs/bookworm/offline/serial-boot1.log").exists()  # kept
