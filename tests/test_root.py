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

NAMES = ["a", "b", "c", ".."]
SCRATCH = "/var/tmp"

component = st.sampled_from(NAMES)
relpath = st.lists(component, min_size=1, max_size=4).map("/".join)
target = st.one_of(relpath, relpath.map(lambda p: "/" + p))
entry = st.tuples(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
                  st.sampled_from(["dir", "dir", "file", "link", "link"]), target)


def build(top: Path, entries: list[tuple[list[str], str, str]]) -> None:
    for parts, kind, to in entries:
        path = top.joinpath(*parts)
        if not path.parent.is_dir() or os.path.lexists(path):
            continue
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text("")
        else:
            path.symlink_to(to)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
