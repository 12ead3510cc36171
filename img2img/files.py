"""Writing files safely, and one-line messages: the leaf every other module may import.

* :func:`atomic_path` / :func:`atomic_write_text` -- write to a temporary file
  beside the target, fsync, rename: a kill or a full disk leaves the old file
  or the new one, never half of one.
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
import os
import socket
import tempfile
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
    """Yield a temporary path beside ``path``; on success it is fsync'ed and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)           # mkstemp makes 0600 files; give the usual mode
    try:
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
        if tmp.exists():
            tmp.unlink()


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


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files that :func:`atomic_path` leaves when a process is killed mid-write.

    Only call this on a folder no other process is writing to (a run folder at the start of training).
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file() and not tmp.is_symlink():
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


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
