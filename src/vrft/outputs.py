"""Safe output writing, shared by every command that writes.

Four rules, each enforced here once:

1. **Check before work.** `check_file_output` / `check_dir_output` refuse, with a one-line
   `UserError`, an output that is the wrong kind (an existing directory where a file is written, a
   file where a directory is), lies under a file, or cannot be written (probed with a real temporary
   file, so read-only file systems and root are handled alike). Commands call them before loading a
   model or converting anything.
2. **An output never replaces an input.** `refuse_overlap` refuses when a path that will be written
   (a file, or a directory vrft fills) is an input, or holds one; a directory output may not be an
   input directory itself.
3. **Writes are atomic.** `atomic_write_text` / `atomic_open` write to a unique temporary name in the
   same directory and rename it into place: a reader (or a killed run) never sees half a file, and
   two writers never mix their bytes.
4. **A directory output is locked and owned.** `OutputDir` takes an exclusive lock (`flock` on
   ``.vrft.lock``, `vrft.locks`: released by the kernel when the process dies, so a killed run never
   blocks the next one) and keeps ``.vrft-manifest.json``, the list of what vrft wrote there (relative paths, each
   with the command that wrote it). vrft only ever deletes or replaces what that list names: a file
   it did not write is never overwritten, and cleaning an earlier output (``output.overwrite=true``,
   a second `vrft data synth` into the same directory) removes exactly the earlier run's files.
5. **A single-file output replaces only its own earlier output.** `check_file_output` refuses an
   existing file that no manifest lists (the manifest of its folder, or of a folder above it, as for
   rule 4) or that another command wrote (an eval's ``metrics.json``, a file of a model directory,
   ``vrft data synth``'s records), and the file it checked is recorded in its folder's
   ``.vrft-manifest.json`` when `atomic_open` renames it into place; so `vrft data convert ... --out
   records.jsonl` may replace its own (or another converter's) earlier records, never the user's
   ``records.jsonl`` nor another command's output.
6. **No output into the file system's root or a system folder.** `check_dir_output` refuses ``/``,
   the top-level system folders (``/usr``, ``/etc``, ``/tmp``, ``/home``, ...) and the home directory
   itself: a directory output is a folder of its own (e.g. ``~/shapes``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from vrft import locks as _locks
from vrft.errors import UserError
from vrft.locks import LOCK_NAME, acquire_lock  # noqa: F401 (part of this module's API)

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".vrft-manifest.json"
_TMP_PREFIX = ".vrft-tmp-"


# ------------------------------------------------------------------------------------------ checks
def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p):
        if p.parent == p:
            break
        p = p.parent
    return p


def _check_ancestors(path: Path, option: str) -> Path:
    """The nearest existing ancestor of `path`; it must be a writable directory."""
    anc = _nearest_existing(path.parent if path != path.parent else path)
    if not anc.is_dir():
        raise UserError(
            f"{option} {path}: {anc} is a file, not a directory; choose a path whose folders are folders"
        )
    _probe(anc, option, path)
    return anc


def _probe(directory: Path, option: str, target: Path) -> None:
    """Create and remove a temporary file in `directory` (the honest writability test)."""
    try:
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX + "probe-", dir=directory)
    except OSError as err:
        raise UserError(f"{option} {target}: cannot write in {directory} ({_reason(err)})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def check_file_output(
    path: str | os.PathLike,
    *,
    option: str = "--out",
    inputs: Iterable[Any] = (),
    owner: str = "file output",
    replaces: str | None = None,
) -> Path:
    """Check an output FILE before any work; returns the path to write (a symlink: its target).

    Refuses: an existing directory or other non-regular file at `path`, a parent that is a file, a
    place that cannot be written, a path that is one of `inputs`, an existing file that vrft did not
    write (`file_is_vrfts`), and one that another vrft command wrote (`file_owner`): an existing file
    is replaced only when its owner is `replaces` (default `owner`) or starts with ``replaces + " "``
    (``replaces="data convert"``: any converter's records). When `atomic_open` later writes this path,
    it lists it as `owner`'s in the folder's manifest, so the next run may replace it.
    """
    p = Path(path)
    if str(path) == "":
        raise UserError(f"{option}: empty path")
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    if p.is_dir():
        raise UserError(
            f"{option} {p} is a directory, but a file is written there; give a file path, e.g. {p / 'out'}"
        )
    if os.path.lexists(p) and not p.is_file():
        raise UserError(f"{option} {p} exists and is not a regular file; choose another path")
    _check_ancestors(p, option)
    refuse_overlap([p], inputs, option=option)
    written_by = file_owner(p) if p.is_file() else None
    if p.is_file() and written_by is None:
        raise UserError(
            f"{option} {p} already exists and vrft did not write it (no {MANIFEST_NAME} beside it lists it); "
            "vrft never overwrites such files: move it or choose another path"
        )
    family = replaces or owner
    if written_by is not None and written_by != family and not written_by.startswith(family + " "):
        raise UserError(
            f"{option} {p} already exists and another vrft command wrote it ('{written_by}' in {MANIFEST_NAME}); "
            f"'{owner}' replaces only its own earlier output: choose another path (or delete that file first)"
        )
    if (r := _resolved(p)) is not None:
        _PENDING_FILES[str(r)] = owner
    return p


_PENDING_FILES: dict[str, str] = {}  # resolved path checked by check_file_output -> owner, until written


def file_is_vrfts(path: str | os.PathLike) -> bool:
    """Whether vrft wrote the file `path`: a ``.vrft-manifest.json`` in its folder or a folder above
    it lists it (or a folder or pattern holding it)."""
    return file_owner(path) is not None


def file_owner(path: str | os.PathLike) -> str | None:
    """The vrft command that wrote the file `path` (its owner in the nearest ``.vrft-manifest.json``, in
    its folder or a folder above it, that lists it); None when vrft did not write it."""
    p = Path(os.path.abspath(path))
    for anc in list(p.parents)[:16]:
        if not (anc / MANIFEST_NAME).is_file():
            continue
        d = OutputDir(anc, "check", lock=False)
        d.entries = read_manifest(anc) or {}
        owner = d.owner_of(p.relative_to(anc).as_posix())
        if owner is not None:
            return owner
    return None


def _record_file(path: Path, owner: str) -> None:
    """List a written single file in its folder's manifest (read, add, atomic rewrite)."""
    directory = path.parent
    key = os.path.realpath(directory)
    if key in _ENTRIES:  # this process holds the folder as an OutputDir: one manifest in memory
        entries = _ENTRIES[key]
    else:
        entries = read_manifest(directory) or {}
    if entries.get(path.name) == owner:
        return
    entries[path.name] = owner
    try:
        _write_manifest(directory, entries)
    except UserError as err:  # the file is written; only its ownership could not be recorded
        logger.warning("%s; vrft will not overwrite %s later", err, path)


def check_dir_output(
    path: str | os.PathLike,
    *,
    option: str = "--out",
    inputs: Iterable[Any] = (),
    writes: Iterable[str] = (),
    foreign: bool = True,
    holding_inputs: bool = False,
) -> Path:
    """Check an output DIRECTORY before any work; returns it.

    Refuses: an existing file at `path` (or above it), the file system's root and system folders
    (`refuse_system_dir`), a place that cannot be written, a directory that is one of `inputs`,
    `writes` (names relative to the directory that the command will write) that are or hold one of
    `inputs`, with `holding_inputs` a directory that holds any of `inputs` (eval / train: an output
    folder is not the data's folder), and (with `foreign`) `writes` that exist but that vrft did not
    write (see `OutputDir.claim`).
    """
    writes = list(writes)
    p = Path(path)
    if str(path) == "":
        raise UserError(f"{option}: empty path")
    if os.path.lexists(p) and not p.is_dir():
        raise UserError(
            f"{option} {p} is a file, but a directory is written there; give a directory path "
            f"(e.g. {p.with_suffix('')}-out)"
        )
    refuse_system_dir(p, option=option)
    if p.is_dir():
        _probe(p, option, p)
    else:
        _check_ancestors(p, option)
    inputs = list(inputs)
    refuse_overlap([p / w for w in writes if not _pattern(w)], inputs, option=option, root=p)
    if holding_inputs:
        refuse_overlap([p], inputs, option=option)
    if foreign and p.is_dir():
        d = OutputDir(p, "check", option=option, lock=False)
        d.entries = read_manifest(p) or {}
        d.refuse_foreign(writes)
    return p


SYSTEM_DIRS: tuple[str, ...] = (
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr", "/var",
)  # fmt: skip
"""Top-level folders of a POSIX system that `check_dir_output` refuses as an output directory."""


def refuse_system_dir(path: str | os.PathLike, *, option: str = "--out") -> None:
    """UserError when `path` is the file system's root, a top-level system folder (`SYSTEM_DIRS`) or
    the home directory itself: vrft writes its files into a folder of their own."""
    r = _resolved(path)
    if r is None:
        return
    what = None
    if r == Path(r.anchor):
        what = "the root of the file system"
    elif str(r) in SYSTEM_DIRS:
        what = "a system folder"
    else:
        with contextlib.suppress(RuntimeError, KeyError, OSError):
            if r == Path(os.path.realpath(Path.home())):
                what = "your home directory"
    if what:
        raise UserError(
            f"{option} {path} is {what}; vrft writes its output into a folder of its own: give a new "
            f"folder, e.g. {r / 'vrft-out'}"
        )


def _pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def _resolved(path: Any) -> Path | None:
    if path is None or str(path) == "":
        return None
    try:
        return Path(os.path.abspath(os.path.realpath(os.fspath(path))))
    except (OSError, ValueError, TypeError):
        return None


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def refuse_overlap(
    outputs: Iterable[Any], inputs: Iterable[Any], *, option: str = "--out", root: Any = None
) -> None:
    """UserError if a written path (file, or a directory vrft fills) is an input or holds one, or if
    the output directory `root` is itself an input directory."""
    ins = [(i, r) for i in inputs if (r := _resolved(i)) is not None]
    if root is not None and (r_root := _resolved(root)) is not None:
        for given, r in ins:
            if r == r_root:
                raise UserError(
                    f"{option} {root} is the input {given}; write the output to another directory"
                )
    for out in outputs:
        r_out = _resolved(out)
        if r_out is None:
            continue
        for given, r in ins:
            same = r == r_out
            if not same and os.path.exists(r_out) and os.path.exists(r):
                with contextlib.suppress(OSError):
                    same = os.path.samefile(r_out, r)
            if same:
                raise UserError(
                    f"{option}: the output {out} is the input {given}; writing it would replace the input. "
                    "Choose another output path"
                )
            if _inside(r, r_out):
                raise UserError(
                    f"{option}: the output {out} holds the input {given}; writing it would replace the "
                    "input. Choose another output path"
                )


# ------------------------------------------------------------------------------------ atomic files
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a unique temporary file beside `path`; on success it is renamed to `path`, else removed.

    Creates the parent directories. An OSError while writing becomes a one-line UserError. A path
    that `check_file_output` checked is then listed in its folder's manifest (rule 5).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-{path.name}.", dir=path.parent)
    except OSError as err:
        raise UserError(f"cannot write {path}: {_reason(err)}") from None
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding})) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        owner = _PENDING_FILES.pop(os.path.realpath(path), None) if _PENDING_FILES else None
        if owner is not None:  # a single-file output checked by check_file_output: now vrft's
            _record_file(path, owner)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UserError(f"cannot write {path}: {_reason(err)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file and a rename."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb", encoding=None) as fh:
        fh.write(data)
    return Path(path)


# ------------------------------------------------------------------------------------ owned folders
def read_manifest(directory: str | os.PathLike) -> dict[str, str] | None:
    """{relative path or pattern: owner command} of `directory`'s manifest, or None without one.

    Entries that could leave the directory (absolute, '..') are dropped: a tampered manifest can
    never make vrft delete anything outside its own folder.
    """
    path = Path(directory) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        logger.warning("%s: unreadable manifest (%s); treating every file there as not vrft's", path, err)
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {k: str(v) for k, v in entries.items() if isinstance(k, str) and _safe_relative(k)}


def _safe_relative(name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return False
    parts = name.replace("\\", "/").split("/")
    return all(part not in ("", ".", "..") for part in parts) and name not in (MANIFEST_NAME, LOCK_NAME)


def _write_manifest(directory: Path, entries: dict[str, str]) -> None:
    data = {"vrft_manifest": 1, "note": "files vrft wrote here; vrft deletes or replaces only these",
            "entries": dict(sorted(entries.items()))}  # fmt: skip
    atomic_write_text(directory / MANIFEST_NAME, json.dumps(data, indent=1) + "\n")


def _matches(directory: Path, entry: str) -> list[Path]:
    """Existing paths an entry names ('checkpoint-*' style patterns match direct children)."""
    if any(c in entry for c in "*?["):
        return sorted(p for p in directory.glob(entry) if os.path.lexists(p))
    p = directory / entry
    return [p] if os.path.lexists(p) else []


def _remove(path: Path, directory: Path, cache: dict[Path, bool] | None = None) -> None:
    """Remove a file, link or directory tree that lies inside `directory` (links are not followed)."""
    cache = {} if cache is None else cache
    if path.parent not in cache:
        real_dir = Path(os.path.realpath(directory))
        cache[path.parent] = _inside(Path(os.path.realpath(path.parent)), real_dir)
    if not cache[path.parent]:
        logger.warning("not removing %s: it lies outside %s", path, directory)
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def remove_dead_temporaries(directory: Path) -> list[Path]:
    """Remove vrft's temporary files in `directory` whose writing process no longer runs (a killed
    run's `.vrft-tmp-<pid>-...`); returns them."""
    removed = []
    with contextlib.suppress(OSError):
        for p in directory.iterdir():
            m = re.match(re.escape(_TMP_PREFIX) + r"(\d+)-", p.name)
            if m and not _alive(int(m.group(1))):
                _remove(p, directory)
                removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but another user's
        return True
    return True


class OutputDir:
    """An output directory: created, exclusively locked, and with a manifest of what vrft wrote there.

    Usage::

        with OutputDir(out, "data synth") as d:
            d.claim(["instances.json", "images"], clean=True)   # refuses files vrft did not write
            ...write the files...
            d.add(f"images/{i:06d}.png" for i in ...)         # record individually written files

    `owner` names the writing command: `claim(clean=True)` first removes what the same owner wrote
    there earlier (so a second run leaves no stale file behind), never another owner's or a foreign
    file. The manifest is written before the files (a killed run leaves them owned, so the next run
    cleans them) and again on exit. `lock=False` (other ranks of a distributed run) skips the lock and
    the manifest: the main process keeps them.
    """

    def __init__(self, path: str | os.PathLike, owner: str, *, option: str = "--out", lock: bool = True):
        self.path = Path(path)
        self.owner = owner
        self.option = option
        self.use_lock = lock
        self.entries: dict[str, str] = {}
        self._lock_fd: int | None = None
        self._dirty = False

    # -- context
    def __enter__(self) -> OutputDir:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> OutputDir:
        if os.path.lexists(self.path) and not self.path.is_dir():
            raise UserError(f"{self.option} {self.path} is a file, but a directory is written there")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(
                f"{self.option} {self.path}: cannot create the directory ({_reason(err)})"
            ) from None
        if self.use_lock:
            self._lock_fd = acquire_lock(self.path, self.owner, option=self.option)
            key = os.path.realpath(self.path)
            if key not in _ENTRIES:  # nested OutputDirs of one directory share one manifest in memory
                _ENTRIES[key] = read_manifest(self.path) or {}
            self.entries = _ENTRIES[key]
        else:
            self.entries = read_manifest(self.path) or {}
        return self

    def close(self) -> None:
        try:
            if self.use_lock and self._dirty:
                self._save()
        finally:
            if self._lock_fd is not None:
                release_lock(self.path, self._lock_fd)
                self._lock_fd = None

    # -- ownership
    def owned(self, name: str) -> bool:
        """Whether `name` (relative) is vrft's: listed, under a listed folder, or matched by a pattern."""
        return self.owner_of(name) is not None

    def owner_of(self, name: str) -> str | None:
        """The command that wrote `name` (relative): the owner of its entry, of a listed folder above
        it, or of a pattern matching it; None when vrft did not write it."""
        if name in self.entries:
            return self.entries[name]
        parts = name.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        for p in prefixes:
            if p in self.entries:
                return self.entries[p]
        patterns = [e for e in self.entries if _pattern(e)]
        for e in patterns:
            if any(fnmatch.fnmatchcase(p, e) and p.count("/") == e.count("/") for p in prefixes):
                return self.entries[e]
        return None

    def foreign(self, names: Iterable[str]) -> list[str]:
        """The names (relative) that exist in the directory and that vrft did not write; for a folder
        that is not vrft's as a whole, the files in it that are not vrft's."""
        out = []
        for name in names:
            if _pattern(name):
                found = [str(p.relative_to(self.path)) for p in _matches(self.path, name)]
            else:
                found = [name] if os.path.lexists(self.path / name) else []
            for f in found:
                if self.owned(f):
                    continue
                p = self.path / f
                if p.is_dir() and not p.is_symlink():
                    out += [
                        rel for q in sorted(p.rglob("*"))
                        if not q.is_dir() and not self.owned(rel := q.relative_to(self.path).as_posix())
                    ]  # fmt: skip
                else:
                    out.append(f)
        return out

    def claim(self, names: Iterable[str], *, clean: bool = False) -> None:
        """Take `names` (files, folders vrft fills, or patterns) as this owner's outputs.

        Refuses (UserError, nothing touched) if one of them exists and vrft did not write it. With
        `clean`, first removes every earlier output of the same owner.
        """
        names = list(names)
        self.refuse_foreign(names)
        if clean:
            self.clean(self.owner)
        for name in names:
            self.entries[name] = self.owner
        self._dirty = True
        if self.use_lock:
            self._save()

    def refuse_foreign(self, names: Iterable[str]) -> None:
        """UserError naming the `names` that exist here and that vrft did not write."""
        found = self.foreign(names)
        if found:
            shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            raise UserError(
                f"{self.option} {self.path} already holds {shown}, which vrft did not write (not listed in "
                f"{MANIFEST_NAME}); vrft never overwrites such files: move them or choose another directory"
            )

    def add(self, names: Iterable[str]) -> None:
        """Record more written names (e.g. one per image) for this owner."""
        for name in names:
            self.entries[name] = self.owner
        self._dirty = True

    def clean(self, *owners: str, only: Callable[[str], bool] | None = None) -> list[Path]:
        """Remove what `owners` wrote here earlier (every owner if none is named; with `only`, just the
        entries it accepts); returns the paths."""
        removed = []
        chosen = [
            e for e, o in self.entries.items() if (not owners or o in owners) and (only is None or only(e))
        ]
        # deepest first, so a folder's files go before the folder
        cache: dict[Path, bool] = {}
        for entry in sorted(chosen, key=lambda e: -e.count("/")):
            for p in _matches(self.path, entry):
                _remove(p, self.path, cache)
                removed.append(p)
            del self.entries[entry]
        folders = {str(Path(e).parent) for e in chosen if "/" in e}
        for folder in [".", *folders]:
            removed += remove_dead_temporaries(self.path / folder)
        for entry in sorted(folders, key=lambda e: -e.count("/")):
            with contextlib.suppress(OSError):
                (self.path / entry).rmdir()  # only if empty: a folder with foreign files stays
        self._dirty = True
        if self.use_lock:
            self._save()
        return removed

    def _save(self) -> None:
        _write_manifest(self.path, self.entries)
        self._dirty = False

    # -- staging
    @contextlib.contextmanager
    def staged(self, *, clean: bool = False) -> Iterator[Path]:
        """A private temporary folder inside the directory; on success its entries are moved into the
        directory (after checking that none replaces a foreign file) and recorded; else it is removed."""
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=self.path))
        try:
            yield tmp
            names = sorted(p.name for p in tmp.iterdir())
            self.claim(names, clean=clean)
            for name in names:
                target = self.path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(tmp / name, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------- locks
_ENTRIES: dict[str, dict[str, str]] = {}  # resolved directory -> its manifest entries, while locked


def release_lock(directory: str | os.PathLike, fd: int | None = None) -> None:
    """Release this process's lock of `directory` (`vrft.locks.release_lock`); the outermost release
    also forgets the manifest held in memory for it."""
    if _locks.release_lock(directory, fd):
        _ENTRIES.pop(os.path.realpath(directory), None)


def release_all() -> None:
    """Release every lock this process holds (the CLI calls it when a command ends)."""
    _locks.release_all()
    _ENTRIES.clear()
