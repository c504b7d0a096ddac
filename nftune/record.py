"""Immutable records: typing.NamedTuple to the type checker, collections.namedtuple at run
time. Importing typing costs every start of nftune more than any module of its own (the
numbers are in the README, "The binary"); a record needs only what NamedTuple itself
builds: a namedtuple of the annotated fields, with the class body's methods on it.

    class Origin(Record):
        file: str
        line: int = 0
"""

from __future__ import annotations

__all__ = ["Record"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    from collections import namedtuple

    # What a class body holds besides its own attributes.
    _CLASS_KEYS = frozenset({"__module__", "__qualname__", "__annotations__"})

    class _RecordType(type):
        def __new__(mcs, name, bases, ns):
            if not bases:
                return super().__new__(mcs, name, bases, ns)
            if "__classcell__" in ns:  # as with typing.NamedTuple, the class is not ns's
                raise TypeError(f"{name}: a record's methods cannot use super()")
            fields = list(ns.get("__annotations__", {}))
            defaults = [ns[f] for f in fields if f in ns]
            if any(f in ns for f in fields[:len(fields) - len(defaults)]):
                raise TypeError(f"{name}: a field without a default follows one with it")
            cls = namedtuple(name, fields, defaults=defaults, module=ns.get("__module__"))
            cls.__qualname__ = ns.get("__qualname__", name)
            for key, value in ns.items():
                if key not in _CLASS_KEYS and key not in fields:
                    setattr(cls, key, value)
            return cls

    class Record(metaclass=_RecordType):
        """The base of nftune's records; a subclass is a namedtuple (see the module)."""
