"""Where commands write: checked destinations and all-or-nothing writes (issue 9).

Every CLI output path goes through here — ``pipeline render --out DIR``, ``pipeline export
--out``, ``experiment report --out``, ``estimate --series-out``, ``fleet generate|snapshot
--out``. The rules, each refused with a ``ValidationError`` naming the option and the path:

- an empty path;
- a destination that is a symbolic link, even a dangling one: Phoenix never writes through
  a link (links higher up the path, such as ``/tmp`` → ``/private/tmp``, are the machine's
  set-up and are followed);
- a directory where a file goes, a file (or anything but a directory) where a directory
  goes, and an existing destination that is not a regular file (a FIFO, a device);
- a parent directory that is missing (unless the command creates it), not a directory, or
  not writable.

Files are written to a temporary file in the destination's directory and renamed over the
destination (``os.replace``), so an error leaves what was there before and no temporary
file. ``write_tree`` stages a whole rendered directory first, then moves the files in and
removes the stale files a previous render left in the directories it owns (``k8s/``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from core.domain.errors import ValidationError

# Files in an owned directory that ``kubectl apply -f DIR`` would pick up.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# What every manifest Phoenix renders carries (labels or API group); a stale file without it
# is someone else's and is not deleted.
PHOENIX_MARKERS = ("phoenix.io/", "app.kubernetes.io/part-of: phoenix")
_MARKER_BYTES = 1 << 16


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _text(path: str | os.PathLike[str] | None, flag: str, what: str) -> Path:
    if path is None or not str(path).strip():
        raise ValidationError(f"{flag} is empty: give {what}")
    if "\0" in str(path):
        raise ValidationError(f"{flag} contains a NUL character")
    return Path(path)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None  # a parent is a file: reported by the parent check
    except OSError as exc:
        raise ValidationError(f"cannot inspect {path}: {_strerror(exc)}") from None


def _refuse_link(path: Path, st: os.stat_result | None, flag: str) -> None:
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise ValidationError(f"{flag} {path} is a symbolic link; Phoenix never writes through a link "
                              "(remove it or choose another path)")


def _check_parent(path: Path, flag: str, *, create: bool) -> None:
    parent = path.parent
    st = _stat(parent)
    if st is None:
        if create:
            return  # created by the write, after every other check passed
        raise ValidationError(f"{flag} directory does not exist: {parent}")
    if not stat.S_ISDIR(st.st_mode):
        raise ValidationError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(f"{flag} {path}: cannot write to {parent} (permission denied)")


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ValidationError(f"cannot inspect {path}: {_strerror(exc)}") from None


def _check_file_target(path: Path, flag: str) -> None:
    st = _lstat(path)
    _refuse_link(path, st, flag)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ValidationError(f"{flag} {path} is a directory; expected a file")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ValidationError(f"{flag} {path} exists and is not a regular file")


def output_file(path: str | os.PathLike[str] | None, *, flag: str = "--out", create_parents: bool = False) -> Path:
    """Check a file destination before any work is done; return it as a ``Path``."""
    out = _text(path, flag, "a file path")
    _check_file_target(out, flag)
    _check_parent(out, flag, create=create_parents)
    return out


def output_dir(path: str | os.PathLike[str] | None, *, flag: str = "--out") -> Path:
    """Check a directory destination (it may not exist yet); return it as a ``Path``."""
    out = _text(path, flag, "a directory")
    st = _lstat(out)
    _refuse_link(out, st, flag)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise ValidationError(f"{flag} {out} exists and is not a directory")
    if st is None:
        for parent in out.parents:  # the nearest existing ancestor must be a writable directory
            pst = _stat(parent)
            if pst is None:
                continue
            if not stat.S_ISDIR(pst.st_mode):
                raise ValidationError(f"{flag} {out}: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValidationError(f"{flag} {out}: cannot create it in {parent} (permission denied)")
            break
    elif not os.access(out, os.W_OK | os.X_OK):
        raise ValidationError(f"{flag} {out}: cannot write to it (permission denied)")
    return out


def _temp_file(directory: Path, name: str) -> Path:
    """A new, empty file next to the destination (``O_EXCL``: never an existing file or link)."""
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise ValidationError(f"cannot create a temporary file in {directory}")


@contextmanager
def replacing(path: Path, *, flag: str = "--out", create_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = output_file(path, flag=flag, create_parents=create_parents)
    tmp: Path | None = None
    try:
        if create_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_file(path.parent, path.name)
        yield tmp
        _check_file_target(path, flag)  # again: something may have appeared meanwhile
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ValidationError(f"cannot write {flag} {path}: {_strerror(exc)}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_file(path: str | os.PathLike[str], data: str | bytes, *, flag: str = "--out",
               create_parents: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` all or nothing; return the path."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    out = Path(path)
    with replacing(out, flag=flag, create_parents=create_parents) as tmp:
        tmp.write_bytes(body)
    return out


def write_tree(root: str | os.PathLike[str], files: Mapping[str, str | bytes], *, flag: str = "--out",
               owned: Iterable[str] = ("k8s",)) -> list[Path]:
    """Write ``files`` (relative path → content) under ``root`` all or nothing.

    In each ``owned`` directory the render is the whole truth: manifest files
    (``MANIFEST_SUFFIXES``) that ``files`` does not contain are removed when Phoenix wrote
    them (``PHOENIX_MARKERS``) and refused otherwise, so ``kubectl apply -f DIR/k8s``
    applies exactly this render. Every check runs before anything is written.
    """
    base = output_dir(root, flag=flag)
    targets = {rel: base / rel for rel in files}
    for rel, target in targets.items():
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"not a relative path inside the tree: {rel}")  # a programming error
        for parent in reversed(list(target.relative_to(base).parents)[:-1]):
            d = base / parent
            st = _lstat(d)
            _refuse_link(d, st, flag)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise ValidationError(f"{flag} {base}: {d} exists and is not a directory")
        _check_file_target(target, flag)
    stale = _stale_files(base, set(targets.values()), owned, flag)

    # Directories this call creates (removed again on failure), outermost first.
    created = [d for d in [*reversed(list(base.parents)), base] if _lstat(d) is None]
    created += sorted({t.parent for t in targets.values() if t.parent != base and _lstat(t.parent) is None})
    staging: Path | None = None
    moved: list[tuple[Path, Path | None]] = []  # (destination, its previous content kept in staging)
    try:
        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".phoenix-staging-", dir=base))
        for rel, content in files.items():
            staged = staging / "new" / rel
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        for i, (rel, target) in enumerate(targets.items()):
            target.parent.mkdir(parents=True, exist_ok=True)
            _check_file_target(target, flag)  # again: something may have appeared meanwhile
            backup = _keep_old(target, staging / "old" / str(i))
            moved.append((target, backup))
            os.replace(staging / "new" / rel, target)
        for i, path in enumerate(stale):
            backup = staging / "stale" / str(i)
            backup.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, backup)
            moved.append((path, backup))
    except BaseException as exc:
        _roll_back(moved)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for d in reversed(created):  # innermost first; fails harmlessly on a non-empty one
            with suppress(OSError):
                d.rmdir()
        if isinstance(exc, OSError):
            raise ValidationError(f"cannot write {flag} {base}: {_strerror(exc)}") from None
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return list(targets.values())


def _keep_old(target: Path, backup: Path) -> Path | None:
    """A hard link (or copy) of the file about to be replaced, to restore it on failure."""
    if _lstat(target) is None:
        return None
    backup.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)
    return backup


def _roll_back(moved: list[tuple[Path, Path | None]]) -> None:
    """Put back what ``write_tree`` replaced or removed (best effort: the error raised says what failed)."""
    for dest, backup in reversed(moved):
        with suppress(OSError):
            if backup is None:
                dest.unlink(missing_ok=True)
            else:
                os.replace(backup, dest)


def _stale_files(base: Path, keep: set[Path], owned: Iterable[str], flag: str) -> list[Path]:
    """Manifests left in the owned directories that this write does not produce."""
    stale: list[Path] = []
    for name in owned:
        d = base / name
        st = _lstat(d)
        if st is None or not stat.S_ISDIR(st.st_mode):
            continue  # missing, or refused above when a file goes there
        try:
            entries = sorted(d.iterdir())
        except OSError as exc:
            raise ValidationError(f"{flag} {base}: cannot list {d}: {_strerror(exc)}") from None
        for entry in entries:
            if entry in keep or entry.suffix.lower() not in MANIFEST_SUFFIXES:
                continue
            est = _lstat(entry)
            if est is None:
                continue
            if not stat.S_ISREG(est.st_mode) or not _written_by_phoenix(entry):
                raise ValidationError(
                    f"{flag} {base}: {entry} was not written by Phoenix; a render replaces every manifest "
                    f"in {d} — move it away or render into another directory"
                )
            stale.append(entry)
    return stale


def _written_by_phoenix(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(_MARKER_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    return any(marker in head for marker in PHOENIX_MARKERS)
