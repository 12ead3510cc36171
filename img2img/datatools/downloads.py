"""Download the public pix2pix data sets: streamed, resumable, checked, safely extracted.

:data:`DATASETS` is the one table of names, URLs, sizes and checksums.  The
archives live on the pix2pix authors' server at Berkeley.  The sizes are the
approximate ones that server lists; exact byte counts and sha256 checksums
were not recorded when this table was written (it was written without
network access), so ``size`` and ``sha256`` are ``None``.  When a checksum is
known -- from this table or from ``sha256=`` / ``--sha256`` -- the archive is
verified and refused on a mismatch; when it is not, the archive's sha256 is
computed and reported so that it can be recorded here.

Safety: the archive is extracted into a temporary folder inside DIR first,
member by member, refusing the whole archive at the first absolute path,
path that escapes DIR (``..``), link that points outside it, or device/FIFO
file; the extracted top-level entries are then moved into DIR.  Existing
entries in DIR are never replaced unless ``overwrite=True``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..config import check_int, check_number
from ..data.io import DataError
from ..files import private_folder

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
MAX_RETRIES = 100          # resume attempts within one call
MAX_TIMEOUT = 3600.0       # seconds of network silence before an attempt gives up


@dataclass(frozen=True)
class PublicDataset:
    name: str
    url: str
    approx_size: str          # as listed by the server; for display only
    size: int | None          # exact bytes when known: verified against the download
    sha256: str | None        # verified when known
    about: str


def _entry(name: str, approx: str, about: str) -> PublicDataset:
    return PublicDataset(name, f"{BASE_URL}/{name}.tar.gz", approx, None, None, about)


DATASETS: dict[str, PublicDataset] = {d.name: d for d in [
    _entry("facades", "29 MB", "CMP Facades: 400 train / 100 val / 106 test, labels <-> facade photo, 256x256 AB"),
    _entry("cityscapes", "99 MB", "Cityscapes: 2975 train / 500 val, street photo <-> semantic labels, 256x256 AB"),
    _entry("maps", "239 MB", "Google Maps: 1096 train / 1098 val, aerial photo <-> map, 600x600 AB"),
    _entry("edges2shoes", "2.0 GB", "UT Zappos50K: 49825 train / 200 val, edges -> shoe photo, 256x256 AB"),
    _entry("edges2handbags", "8.0 GB", "iGAN handbags: 138567 train / 200 val, edges -> handbag photo, 256x256 AB"),
    _entry("night2day", "1.9 GB", "Transient Attributes: 17823 train / 10 val / 2287 test, night <-> day, 256x256 AB"),
]}


@dataclass
class Downloaded:
    name: str
    dir: Path                  # where the data set now is (DIR/NAME for the public sets)
    entries: list[Path]        # the top-level entries extracted into DIR
    sha256: str                # of the archive
    verified: bool             # the checksum was known and matched
    archive: Path | None       # kept archive (keep_archive=True), else None


class _Cut(Exception):
    """The connection ended before the whole body arrived (resumable)."""


def table() -> str:
    """The data set table as text (for --help)."""
    rows = [f"  {d.name:<15} {d.approx_size:>7}  {d.about}" for d in DATASETS.values()]
    return "\n".join(rows)


def download(name: str, dest, *, url: str | None = None, sha256: str | None = None, keep_archive: bool = False,
             overwrite: bool = False, retries: int = 3, timeout: float = 30.0, progress: bool = True) -> Downloaded:
    """Download data set ``name`` into ``dest`` (creating DEST/NAME for the public sets) and extract it.

    ``url`` overrides the table (a mirror; any ``http(s)`` URL of a tar
    archive, then ``name`` need not be in the table).  A partial download
    (``DEST/ARCHIVE.part``) is resumed with an HTTP Range request, by the next
    attempt (up to ``retries`` within this call) or by running it again.
    """
    entry = DATASETS.get(name)
    if entry is None and url is None:
        raise DataError(f"{name}: unknown data set (known: {', '.join(DATASETS)}; "
                        "or give --url for an archive of your own)")
    url = url or entry.url
    expected = (sha256 or (entry.sha256 if entry else None))
    expected = expected.strip().lower() if expected else None
    if expected is not None and (len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected)):
        raise DataError(f"{sha256}: not a sha256 checksum (64 hexadecimal digits)")
    size = entry.size if entry and url == entry.url else None
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DataError(f"{url}: not an http(s) URL")
    if not (name and all(c.isalnum() or c in "-_." for c in name)) or name in (".", ".."):
        raise DataError(f"{name!r}: a data set name may hold letters, digits, '-', '_' and '.' only")

    check_int("retries", retries, 0, MAX_RETRIES)
    check_number("timeout", timeout, 0.0, MAX_TIMEOUT, low_open=True, why=" seconds")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest}: exists and is not a directory")
    if (dest / name).exists() and not overwrite:
        raise DataError(f"{dest / name}: already exists; remove it or pass --overwrite to replace it")
    dest.mkdir(parents=True, exist_ok=True)
    fname = PurePosixPath(urllib.parse.unquote(parsed.path)).name
    if not fname or fname in (".", ".."):
        fname = f"{name}.tar.gz"
    archive = dest / fname
    part = archive.with_name(archive.name + ".part")
    for f in (archive, part):                 # appended to / read in place: a link would lead elsewhere
        if f.is_symlink():
            raise DataError(f"{f}: is a symbolic link; refused (downloads are written only inside {dest})")

    if not archive.exists():
        attempt = 0
        while True:
            try:
                _fetch(url, part, timeout, progress, size)
                break
            except _Cut as e:
                attempt += 1
                if attempt > retries:
                    have = part.stat().st_size if part.exists() else 0
                    raise DataError(f"{url}: download interrupted after {have} bytes ({e}); run the same command "
                                    f"again to resume from {part}") from None
        os.replace(part, archive)

    digest = _sha256(archive, progress)
    if expected is not None and digest != expected:
        archive.unlink()
        raise DataError(f"{archive}: sha256 mismatch (expected {expected}, got {digest}); the file was deleted, "
                        "run again to download it afresh")
    entries = safe_extract(archive, dest, overwrite=overwrite, progress=progress)
    kept = archive
    if not keep_archive:
        archive.unlink()
        kept = None
    target = dest / name if (dest / name) in entries else dest
    return Downloaded(name, target, entries, digest, expected is not None, kept)


# --------------------------------------------------------------------------- HTTP

def _fetch(url: str, part: Path, timeout: float, progress: bool, size: int | None) -> None:
    """Fetch ``url`` into ``part``, appending from its current length when the server allows Range."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "img2img-data-download"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:                 # nothing left to send: complete, or a stale part file
            total = _content_range_total(e.headers.get("Content-Range"))
            if total == have:
                return
            part.unlink()
            raise _Cut("the partial file did not match the server's; starting again") from None
        raise DataError(f"{url}: the server answered HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"cannot download {url}: {_why(e.reason)} (offline? a mirror can be given with --url)") from None
    except (TimeoutError, socket.timeout, OSError, HTTPException) as e:
        raise DataError(f"cannot download {url}: {_why(e)} (offline? a mirror can be given with --url)") from None

    with resp:
        status = resp.status
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != have:
                part.unlink()
                raise _Cut(f"the server resumed at byte {start}, not {have}; starting again")
            mode = "ab"
        else:
            if status != 200:
                raise DataError(f"{url}: unexpected HTTP status {status}")
            have, mode, total = 0, "wb", length
        if size is not None and total is not None and total != size:
            raise DataError(f"{url}: the server offers {total} bytes but this data set is {size} bytes; "
                            "wrong file or mirror")
        got = 0
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
                   desc=part.name.removesuffix(".part"), dynamic_ncols=True)
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        chunk = resp.read(1 << 20)
                    except (OSError, HTTPException) as e:
                        raise _Cut(_why(e)) from None
                    if not chunk:
                        break
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())
        finally:
            bar.close()
        if length is not None and got < length:
            raise _Cut(f"the connection closed after {got} of {length} bytes")


def _content_range(value: str | None) -> tuple[int, int | None]:
    """'bytes START-END/TOTAL' -> (START, TOTAL or None)."""
    try:
        unit, rest = value.split(" ", 1)
        span, total = rest.split("/", 1)
        start = int(span.split("-", 1)[0])
        return start, (int(total) if total.strip() != "*" else None)
    except (AttributeError, ValueError):
        return -1, None


def _content_range_total(value: str | None) -> int | None:
    try:
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, ValueError, IndexError):
        return None


def _why(e) -> str:
    if isinstance(e, socket.gaierror):
        return f"host not found ({e.strerror or e})"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def _sha256(path: Path, progress: bool) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc="sha256",
                                     disable=not progress or size < (64 << 20), dynamic_ncols=True) as bar:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


# --------------------------------------------------------------------------- extraction

def safe_extract(archive, dest, *, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Extract tar ``archive`` into ``dest`` safely; return the top-level entries it created.

    Refused (DataError naming the member, nothing left behind): absolute
    paths, ``..`` escapes, symbolic or hard links resolving outside ``dest``,
    device files and FIFOs.  Extraction goes to a temporary folder in ``dest``;
    its top-level entries then replace nothing unless ``overwrite``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with private_folder(".extract-", dest) as tmp:   # a killed extraction's folder goes next time
        _extract_into(archive, tmp, progress)
        tops = sorted(p.name for p in tmp.iterdir())
        clash = [t for t in tops if (dest / t).exists() or (dest / t).is_symlink()]
        if clash and not overwrite:
            raise DataError(f"{dest / clash[0]}: already exists; remove it or pass --overwrite to replace it")
        entries = []
        for t in tops:
            target = dest / t
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(tmp / t, target)
            entries.append(target)
        return entries


def _extract_into(archive: Path, root: Path, progress: bool) -> None:
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: not a readable tar archive ({_why(e)})") from None
    real_root = os.path.realpath(root)
    data_filter = getattr(tarfile, "data_filter", None)
    with tf, tqdm(desc="extract", unit="file", disable=not progress, dynamic_ncols=True) as bar:
        try:
            for m in tf:
                _check_member(archive, m, real_root)
                if data_filter is not None:
                    tf.extract(m, root, filter="data")
                else:  # pragma: no cover - Python without extraction filters
                    tf.extract(m, root, set_attrs=False)
                bar.update()
        except DataError:
            raise
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            filter_error = getattr(tarfile, "FilterError", None)
            if filter_error is not None and isinstance(e, filter_error):
                raise DataError(f"{archive}: refused: unsafe member ({_why(e)})") from None
            raise DataError(f"{archive}: broken archive ({_why(e)})") from None


def _within(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root + os.sep)


def _check_member(archive: Path, m: tarfile.TarInfo, real_root: str) -> None:
    name = m.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or os.path.isabs(name):
        raise DataError(f"{archive}: refused: member {name!r} has an absolute path")
    target = os.path.realpath(os.path.join(real_root, name))
    if not _within(target, real_root):
        raise DataError(f"{archive}: refused: member {name!r} would be written outside the destination")
    if m.isdev():
        raise DataError(f"{archive}: refused: member {name!r} is a device file or FIFO")
    if m.issym():
        if os.path.isabs(m.linkname):
            raise DataError(f"{archive}: refused: link {name!r} points to the absolute path {m.linkname!r}")
        link = os.path.realpath(os.path.join(real_root, os.path.dirname(name), m.linkname))
        if not _within(link, real_root):
            raise DataError(f"{archive}: refused: link {name!r} -> {m.linkname!r} points outside the destination")
    elif m.islnk():
        link = os.path.realpath(os.path.join(real_root, m.linkname))
        if os.path.isabs(m.linkname) or not _within(link, real_root):
            raise DataError(f"{archive}: refused: hard link {name!r} -> {m.linkname!r} points outside the destination")
    elif not (m.isfile() or m.isdir()):
        raise DataError(f"{archive}: refused: member {name!r} is not a regular file, folder or link")
