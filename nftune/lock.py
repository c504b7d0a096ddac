"""One nftune run at a time on a tree: a lock on the tree's top directory itself, so it
leaves no file behind in an image."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator

from .console import say
from .errors import EXIT_FAILED, NftuneError
from .root import Root

LOCK_TIMEOUT = 120.0


@contextlib.contextmanager
def locked(root: Root, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Serialize nftune runs on one tree. The lock is on the tree's top directory itself,
    so it leaves no file behind in an image."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root.fd)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() > deadline:
                    raise NftuneError(f"another nftune still holds the lock after {timeout:g}s",
                                      path=str(root.path), exit_code=EXIT_FAILED,
                                      hint="wait for it to finish") from None
                if not told:
                    say("nftune: waiting for another nftune run to finish", err=True)
                    told = True
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)
