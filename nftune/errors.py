"""The one error type. It carries where the problem is and how to fix it."""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:  # importing pathlib costs every start of nftune, --version included
    from pathlib import Path

# Exit codes, documented in nftune(8) and the README.
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2  # usage or configuration error: nothing was written
EXIT_FAILED = 3  # the operation could not complete (conflict, I/O, a command failed)


class NftuneError(Exception):
    """A problem the user can fix: names the file, line, key and value, with a hint."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
        value: str | None = None,
        exit_code: int = EXIT_USAGE,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = str(path) if path is not None else None
        self.line = line
        self.key = key
        self.value = value
        self.exit_code = exit_code

    def location(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        """One line: names and values from the tree are escaped, a long value is cut."""
        from .text import cut, escape

        parts = []
        if loc := self.location():
            parts.append(loc)
        if self.key is not None:
            parts.append(f"{cut(self.key)}={cut(self.value)}" if self.value is not None
                         else cut(self.key))
        parts.append(self.message)
        return escape(": ".join(parts))
