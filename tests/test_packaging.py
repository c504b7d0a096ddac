"""The packaging follows nftune's own tables, without building anything: the .deb's purge
removes exactly the names nftune may own (artifacts.FILES), the .rpm's %files lists every
file the package renders and installs (packaging/files.list), and the version is the one
in nftune/__init__.py."""

from __future__ import annotations

import re
from pathlib import Path

from nftune import __version__
from nftune.apply import plan
from nftune.artifacts import BASE, OWNED, Layer
from nftune.context import Context
from nftune.root import Root

TOP = Path(__file__).resolve().parents[1]
# The rpm macros %files uses, as systemd-rpm-macros and rpm define them.
RPM_DIRS = {"%{_modulesloaddir}": "/usr/lib/modules-load.d", "%{_sysctldir}": "/usr/lib/sysctl.d",
            "%{_udevrulesdir}": "/usr/lib/udev/rules.d", "%{_unitdir}": "/usr/lib/systemd/system",
            "%{_sysconfdir}": "/etc", "%{_datadir}": "/usr/share"}


def spec_files() -> list[str]:
    spec = (TOP / "rpm/nftune.spec").read_text()
    section = spec[spec.index("\n%files\n"):spec.index("\n%changelog\n")]
    out = []
    for line in section.splitlines()[2:]:
        path = re.sub(r"^%(config\(noreplace\)|dir|doc|license) ", "", line.strip())
        for macro, value in RPM_DIRS.items():
            path = path.replace(macro, value)
        out.append(path)
    return out


def listed(path: str, files: list[str]) -> bool:
    return path in files or any(f.endswith("/") and path.startswith(f) for f in files)


def test_purge_removes_exactly_the_names_nftune_may_own() -> None:
    postrm = (TOP / "debian/nftune.postrm").read_text()
    loop = postrm[postrm.index("for f in "):postrm.index("; do")]
    purged = set(loop.removeprefix("for f in ").replace("\\", " ").split())
    assert purged == {f"{BASE[Layer.ADMIN]}/{d}/{glob}" for d, globs in OWNED.items()
                      for glob in globs}


def test_rpm_files_list_what_the_package_renders(tree: Path) -> None:
    vendor = {a.path for a in plan(Context(Root(tree)), Layer.VENDOR).artifacts}
    assert vendor and all(listed(p, spec_files()) for p in vendor), (vendor, spec_files())


def test_rpm_files_list_what_both_packages_install() -> None:
    lines = [line.split() for line in (TOP / "packaging/files.list").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines
    for mode, source, dest in lines:
        assert (TOP / source).is_file() and re.fullmatch(r"0[0-7]{3}", mode)
        dest = dest.replace("{unitdir}", RPM_DIRS["%{_unitdir}"])
        assert listed(dest, spec_files()), dest


def test_one_version() -> None:
    changelog = (TOP / "debian/changelog").read_text().splitlines()[0]
    assert changelog.startswith(f"nftune ({__version__}) ")
    spec = (TOP / "rpm/nftune.spec").read_text()
    assert "Version:        %{nftune_version}\n" in spec
    first = spec[spec.index("\n%changelog\n"):].splitlines()[2]
    assert first.endswith(f" - {__version__}-1"), first
    assert "__version__" in (TOP / "tools/build-rpm").read_text()
    assert "version = attr: nftune.__version__" in (TOP / "setup.cfg").read_text()


def test_the_timer_unit_waits_the_default_interval() -> None:
    """The shipped timer holds [Verify] Interval='s default; only another value renders a
    drop-in (render.py), so the two must agree."""
    from nftune.config import builtin

    timer = (TOP / "units/nftune-verify.timer").read_text()
    minutes = builtin().verify.interval
    assert f"\nOnBootSec={minutes}min\n" in timer
    assert f"\nOnUnitInactiveSec={minutes}min\n" in timer
