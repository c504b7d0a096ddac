"""nftune.record: what a record is at run time (mypy sees typing.NamedTuple)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nftune.record import Record


class Point(Record):
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    @property
    def norm(self) -> int:
        return abs(self.x) + abs(self.y)

    def __str__(self) -> str:
        return f"{self.label or 'p'}({self.x},{self.y})"


def test_a_record_is_an_immutable_namedtuple_with_its_methods() -> None:
    p = Point(3, y=-4)
    assert (p.x, p.y, p.label, p.norm, str(p)) == (3, -4, "", 7, "p(3,-4)")
    assert p == Point(3, -4) and hash(p) == hash(Point(3, -4))
    assert p._replace(label="q") == Point(3, -4, "q") and p._asdict()["y"] == -4
    assert Point.__doc__ == "A point." and Point.__module__ == __name__
    assert Point._fields == ("x", "y", "label") and Point._field_defaults == {"y": 0, "label": ""}
    with pytest.raises(AttributeError):
        p.x = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]


def test_a_field_without_default_after_one_with_it_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):
        class Bad(Record):
            a: int = 0
            b: int


def test_a_method_with_super_is_refused_at_once() -> None:
    """A record is built anew from its class body, as typing.NamedTuple does: super()
    in a method would fail at its first call, so the class is refused instead."""
    with pytest.raises(TypeError, match="cannot use super"):
        class Sub(Record):
            a: int

            def __repr__(self) -> str:
                return super().__repr__()


def test_records_do_not_import_typing() -> None:
    top = str(Path(__file__).resolve().parents[1])
    code = f"import sys; sys.path.insert(0, {top!r}); import nftune.record; " \
           "print('typing' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
