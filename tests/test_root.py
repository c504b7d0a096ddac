"""Root.chase() names what the kernel opens: on random trees of directories, files and
symlinks (absolute, relative, "..", loops), the path chase() gives for an existing target is
the one openat2(RESOLVE_IN_ROOT) reaches (a differential: the kernel decides)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nftune.root import Root

NAMES = ["a", "b", "a", "b", ".."]
SCRATCH = "/var/tmp"

component = st.sampled_from(NAMES)
relpath = st.lists(component, min_size=1, max_size=4).map("/".join)
target = st.one_of(relpath, relpath.map(lambda p: "/" + p))
entry = st.tuples(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=3),
                  st.sampled_from(["dir", "dir", "file", "link", "link"]), target)


def build(top: Path, entries: list[tuple[list[str], str, str]]) -> None:
    """Each entry is made only under real directories of the tree: a link on the way
    could lead anywhere on this machine."""
    for parts, kind, to in entries:
        path = top.joinpath(*parts)
        above = [top.joinpath(*parts[:i]) for i in range(1, len(parts))]
        if any(p.is_symlink() or not p.is_dir() for p in above) or os.path.lexists(path):
            continue
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text("")
        else:
            path.symlink_to(to)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entry, min_size=3, max_size=16), st.lists(relpath, min_size=1, max_size=8))
def test_chase_names_what_the_kernel_opens(entries: list[tuple[list[str], str, str]],
                                           asked: list[str]) -> None:
    top = Path(tempfile.mkdtemp(prefix="nftune-chase.", dir=SCRATCH))
    try:
        build(top, entries)
        root = Root(top)
        for path in asked:
            try:
                fd = root.open("/" + path, os.O_PATH)
            except OSError:
                continue  # missing, or a loop: named as written, nothing to compare
            try:
                real = os.readlink(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
            inside = "/" + os.path.relpath(real, os.path.realpath(top)) if real != \
                os.path.realpath(top) else "/"
            assert root.chase("/" + path) == inside, path
    finally:
        shutil.rmtree(top)
