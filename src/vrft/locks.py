"""Exclusive, re-entrant locks of output directories (`flock` on ``.vrft.lock``), for `vrft.outputs`.

The kernel releases a lock when its process dies, so a killed run never blocks the next one; a
second vrft process writing the same directory is refused, naming the holder's pid and command.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

from vrft.errors import UserError

logger = logging.getLogger(__name__)

LOCK_NAME = ".vrft.lock"


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


_HELD: dict[str, tuple[int, int]] = {}  # resolved directory -> (fd, depth) held by this process


def acquire_lock(directory: str | os.PathLike, owner: str, *, option: str = "--out") -> int:
    """Exclusive lock of `directory` for this process (re-entrant); UserError if another holds it."""
    key = os.path.realpath(directory)
    if key in _HELD:
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        return fd
    path = Path(directory) / LOCK_NAME
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no flock
        logger.warning("%s: no file locks on this system; writing without one", directory)
        _HELD[key] = (os.open(path, os.O_RDWR | os.O_CREAT, 0o666), 1)
        return _HELD[key][0]
    for _ in range(10):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise UserError(f"{option} {directory}: cannot create the lock file ({_reason(err)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read_holder(fd)
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                logger.warning("%s: the file system has no locks (%s); writing without one", directory, err)
                _HELD[key] = (os.open(path, os.O_RDONLY), 1)
                return _HELD[key][0]
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise UserError(
                    f"{option} {directory} is being written by another vrft process ({holder or 'unknown'}); "
                    "wait for it to finish or choose another directory"
                ) from None
            raise UserError(f"{option} {directory}: cannot lock ({_reason(err)})") from None
        # the file may have been removed by the previous holder after we opened it: lock the live one
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: vrft {owner}\n".encode())
        _HELD[key] = (fd, 1)
        return fd
    raise UserError(f"{option} {directory}: could not take the lock (it kept changing); try again")


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    return ""


def release_lock(directory: str | os.PathLike, fd: int | None = None) -> bool:
    """Release this process's lock of `directory` (the outermost release removes the lock file and
    returns True; an inner one, or no lock held, returns False)."""
    key = os.path.realpath(directory)
    if key not in _HELD:
        return False
    held, depth = _HELD[key]
    if depth > 1:
        _HELD[key] = (held, depth - 1)
        return False
    del _HELD[key]
    with contextlib.suppress(OSError):
        os.unlink(Path(directory) / LOCK_NAME)  # while still locked: no one can hold a removed file
    os.close(held)
    return True


def release_all() -> None:
    """Release every lock this process holds."""
    for key in list(_HELD):
        _HELD[key] = (_HELD[key][0], 1)
        release_lock(key)
