"""Writing files safely, and one-line messages: the leaf every other module may import.

* :func:`atomic_path` / :func:`atomic_write_text` -- write to a temporary file
  beside the target, fsync, rename: a kill or a full disk leaves the old file
  or the new one, never half of one; the temporary a kill leaves is removed by
  the next write of the same file.  :func:`private_folder` -- a scratch folder
  that the next use removes likewise if a kill left it.
* :func:`save_image` -- the one image writer (format from the extension, the
  one extension table :data:`IMAGE_FORMATS`).
* :func:`first_line` -- the first line of an exception's text, for messages
  that must fit on one line; :func:`printable` -- text with control characters
  (a newline in a file name) escaped, so a message stays on one line.
* :func:`folder_lock` -- an exclusive OS lock on a folder (a training run's),
  released by the OS when the process ends, however it ends.
* :func:`within` / :func:`check_output` -- where a path really points (symbolic
  links resolved): outputs must stay inside their output folder and out of every input.

Nothing here imports torch or any other img2img module.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import numpy as np

# file extension -> PIL format name; anything else is written as PNG
IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
                 ".tif": "TIFF", ".tiff": "TIFF"}


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of ``str(e)`` (at most ``limit`` characters), or the exception's type name."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def printable(text: str) -> str:
    """``text`` with control characters escaped (a newline as \\n), so that a message naming a file
    called ``"a\\nb.png"`` stays on one line."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


# ------------------------------------------------------------------------------------------- paths
def within(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it, after resolving symbolic links in both."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents


def check_output(path: str | Path, out_root: str | Path, inputs=()) -> str | None:
    """Why writing ``path`` is refused, or None: where it really lands (every symbolic link resolved,
    e.g. OUT/sub linking into INPUT/sub, or OUT/a.png linking to INPUT/a.png) must be inside
    ``out_root`` and in none of ``inputs`` (folders or files)."""
    path = Path(path)
    real = path.resolve()
    root = Path(out_root).resolve()
    for src in inputs:
        s = Path(src).resolve()
        if real == s or s in real.parents:
            return f"{path}: {'is' if real == s else 'would be written into'} the input {src} (it resolves " \
                   f"to {real}); outputs never touch the input"
    if root not in real.parents and real != root:
        return f"{path}: resolves to {real}, outside the output folder {out_root} (a symbolic link?); refused"
    return None


# ------------------------------------------------------------------------------------------- the run lock
LOCK_NAME = ".lock"


class FolderBusy(Exception):
    """Another process holds the folder's lock; ``holder`` says who (pid, host, start time) if known."""

    def __init__(self, folder: Path, holder: str):
        super().__init__(f"{folder} is in use by another process ({holder or 'details unknown'})")
        self.folder, self.holder = folder, holder


@contextlib.contextmanager
def folder_lock(folder: str | Path, remove_if_new: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if needed) while the block runs.

    The lock is ``fcntl.flock`` on ``FOLDER/.lock``, which holds the holder's pid, host and start
    time for the message another process gets (:class:`FolderBusy`).  The OS releases it when the
    process ends in any way, SIGKILL included, so a killed run can be resumed at once.  With
    ``remove_if_new``, a folder this call created and that holds nothing but the lock file
    afterwards (the block failed before writing) is removed again.  Without fcntl (Windows) no
    lock is taken.
    """
    folder = Path(folder)
    try:
        import fcntl
    except ImportError:                                # pragma: no cover - not POSIX
        yield
        return
    created = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        _remove_if_empty(created, lock)
        raise OSError(e.errno, e.strerror, str(lock)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 1000, 0).decode("utf-8", "replace").strip()
            raise FolderBusy(folder, printable(holder)) from None
        info = f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)                        # still ours: nobody reads a stale holder
            _remove_if_empty(created if remove_if_new else [], lock)
    finally:
        os.close(fd)                                   # releases the lock


def _remove_if_empty(created: list[Path], lock: Path) -> None:
    """Remove the folders in ``created`` (outermost first) again if nothing but ``lock`` is in them."""
    if not created:
        return
    try:
        if {p.name for p in created[-1].iterdir()} <= {lock.name}:
            if lock.exists():
                lock.unlink()
            for d in reversed(created):
                d.rmdir()
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsync'ed and renamed onto ``path``.

    The temporary file is ``.NAME.XXXXXXXX.tmp``, locked (``flock``) while this process writes it.
    A kill leaves it behind; the next write of the same ``path`` removes such leftovers first (same
    target, its writer gone; the folder is listed once per process, at its first write there).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers_of(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp)
    try:
        _lock(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)           # mkstemp makes 0600 files; give the usual mode
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:          # e.g. a full disk: name the file being written, not the temporary one
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    finally:
        os.close(fd)
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def private_folder(prefix: str, parent: str | Path | None = None) -> Iterator[Path]:
    """A temporary folder ``PARENT/PREFIXxxxxxxxx`` (default parent: the system's temporary folder),
    removed with its contents afterwards.  Locked while in use, so that the next use of the same
    ``prefix`` in ``parent`` can remove the folders a killed process left (lock free) -- ``tempfile.TemporaryDirectory`` leaves a 200 MB model in /tmp after a SIGKILL."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(glob.escape(prefix) + "*"):
        if old.is_dir() and not old.is_symlink() and _abandoned(old):
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(folder, os.O_RDONLY)
    try:
        _lock(fd)
        yield folder
    finally:
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


# when this process started (close enough: when this module was first imported)
PROCESS_START = time.time()


def _lock(fd: int) -> None:
    try:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):                     # no flock here: the age test alone decides
        pass


def _abandoned(path: Path) -> bool:
    """Whether ``path`` (a temporary file or folder of ours) was left by a process that is gone.

    Where ``flock`` works, that is exact: every writer holds the lock of its temporary until it is
    renamed or removed, and the OS drops the lock of a killed process.  Elsewhere (no fcntl, a
    file system without locks) it is a guess by age: last changed before this process started.
    """
    try:
        old = path.lstat().st_mtime < PROCESS_START
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # released by close below
        return True
    except ImportError:                                # pragma: no cover - not POSIX
        return old
    except OSError as e:
        return False if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else old
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")   # what atomic_path's mkstemp makes


# folder -> {target name: the temporaries of it found there}, listed at this process's first write into
# the folder: a killed process's leftovers are older than that, so one listing per folder serves every
# later write (translate writes thousands of files into one folder; listing it for each was quadratic)
_LEFTOVERS: dict[str, dict[str, list[Path]]] = {}
_LEFTOVERS_LOCK = threading.Lock()          # translate writes from several threads


def _remove_leftovers_of(path: Path) -> None:
    folder = os.path.abspath(path.parent)
    with _LEFTOVERS_LOCK:
        found = _LEFTOVERS.get(folder)
        if found is None:
            found = _LEFTOVERS[folder] = {}
            for tmp in _temporaries(path.parent):
                found.setdefault(_TMP_NAME.match(tmp.name)["name"], []).append(tmp)
        mine = found.pop(path.name, [])
    for tmp in mine:
        _remove_if_abandoned(tmp)


def _temporaries(folder: str | Path) -> list[Path]:
    """The files in ``folder`` named like :func:`atomic_path`'s temporaries."""
    try:
        return [p for p in Path(folder).glob(".*.tmp") if _TMP_NAME.match(p.name)]
    except OSError:
        return []


def _remove_if_abandoned(tmp: Path) -> bool:
    if tmp.is_file() and not tmp.is_symlink() and _abandoned(tmp):
        try:
            tmp.unlink()
            return True
        except OSError:
            pass
    return False


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> list[Path]:
    """Delete the ``.NAME.XXXXXXXX.tmp`` files that :func:`atomic_path` leaves when a process is killed
    mid-write: in ``folder``, for target ``name`` only if given, each only if no live process holds
    its lock (see :func:`_abandoned`).  Returns what was removed."""
    return [tmp for tmp in _temporaries(folder)
            if (name is None or _TMP_NAME.match(tmp.name)["name"] == name) and _remove_if_abandoned(tmp)]


def save_image(array: np.ndarray, path: str | Path, quality: int = 95, compress_level: int = 6) -> None:
    """Write a uint8 (H, W), (H, W, 1) or (H, W, 3) array atomically; format from the extension.

    JPEG and WebP use ``quality`` (JPEG without chroma subsampling from 90 up); PNG uses
    ``compress_level`` (0-9).
    """
    from PIL import Image
    path = Path(path)
    arr = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    fmt = IMAGE_FORMATS.get(path.suffix.lower(), "PNG")
    kw: dict = {}
    if fmt == "JPEG":
        kw = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    elif fmt == "WEBP":
        kw = {"quality": quality}
    elif fmt == "PNG":
        kw = {"compress_level": compress_level}
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt, **kw)
