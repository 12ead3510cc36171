"""`img2img data download` against a local HTTP server on 127.0.0.1 (no internet needed).

The server (threaded http.server, loopback only, bounded number of requests)
serves small tar.gz archives made here, honours ``Range: bytes=N-`` and can
cut the connection half-way through the body the first time a file is asked for.
"""
from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from img2img.cli import main
from img2img.data.io import DataError
from img2img.datatools import download, safe_extract

MAX_REQUESTS = 50


class _Handler(BaseHTTPRequestHandler):
    timeout = 10                     # a stuck client cannot hold a server thread for long

    def log_message(self, *args):    # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, self.headers.get("Range")))
            if len(srv.requests) > MAX_REQUESTS:
                self.send_error(503)
                return
            cut = self.path in srv.cut_once
            srv.cut_once.discard(self.path)
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        part = body[start:]
        self.send_header("Content-Length", str(len(part)))
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        if cut:                      # promise the whole body, send half, hang up
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(part)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.cut_once, srv.requests, srv.lock = {}, set(), [], threading.Lock()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _dataset_archive() -> tuple[bytes, dict[str, bytes]]:
    rng = np.random.default_rng(0)
    files = {"facades/train/1.bin": rng.bytes(150_000), "facades/val/2.bin": rng.bytes(90_000),
             "facades/README.txt": b"test archive\n"}
    members = [(tarfile.TarInfo("facades"), None)]
    members[0][0].type = tarfile.DIRTYPE
    members += [_file(n, d) for n, d in files.items()]
    return _tar_gz(members), files


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith(".extract-") or p.name.endswith(".part"))


def test_download_extracts_and_verifies(server, tmp_path):
    archive, files = _dataset_archive()
    server.files["/facades.tar.gz"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    r = download("facades", tmp_path / "data", url=server.url("/facades.tar.gz"), sha256=digest, progress=False)
    assert r.verified and r.sha256 == digest
    assert r.dir == tmp_path / "data" / "facades"
    for name, data in files.items():
        assert (tmp_path / "data" / name).read_bytes() == data
    assert not (tmp_path / "data" / "facades.tar.gz").exists()       # archive removed after extraction
    assert _leftovers(tmp_path / "data") == []
    assert len(server.requests) == 1


def test_download_without_checksum_reports_the_digest_and_keeps_archive(server, tmp_path):
    archive, _ = _dataset_archive()
    server.files["/mirror/facades.tar.gz"] = archive
    r = download("facades", tmp_path, url=server.url("/mirror/facades.tar.gz"), keep_archive=True, progress=False)
    assert not r.verified
    assert r.sha256 == hashlib.sha256(archive).hexdigest()
    assert r.archive == tmp_path / "facades.tar.gz" and r.archive.read_bytes() == archive


def test_resume_after_the_connection_is_cut(server, tmp_path):
    archive, files = _dataset_archive()
    server.files["/facades.tar.gz"] = archive
    server.cut_once.add("/facades.tar.gz")
    url = server.url("/facades.tar.gz")
    with pytest.raises(DataError, match="interrupted.*run the same command again to resume"):
        download("facades", tmp_path, url=url, retries=0, progress=False)
    part = tmp_path / "facades.tar.gz.part"
    have = part.stat().st_size
    assert 0 < have < len(archive)
    assert not (tmp_path / "facades").exists()

    r = download("facades", tmp_path, url=url, sha256=hashlib.sha256(archive).hexdigest(), retries=0,
                 progress=False)
    assert r.verified
    assert server.requests[-1] == ("/facades.tar.gz", f"bytes={have}-")   # asked only for the rest
    assert (tmp_path / "facades" / "train" / "1.bin").read_bytes() == files["facades/train/1.bin"]
    assert not part.exists()


def test_retries_resume_within_one_call(server, tmp_path):
    archive, _ = _dataset_archive()
    server.files["/facades.tar.gz"] = archive
    server.cut_once.add("/facades.tar.gz")
    r = download("facades", tmp_path, url=server.url("/facades.tar.gz"), retries=2,
                 sha256=hashlib.sha256(archive).hexdigest(), progress=False)
    assert r.verified
    assert [rng is not None for _, rng in server.requests] == [False, True]


def test_bad_checksum_is_refused_and_nothing_extracted(server, tmp_path):
    archive, _ = _dataset_archive()
    server.files["/facades.tar.gz"] = archive
    with pytest.raises(DataError, match="sha256 mismatch"):
        download("facades", tmp_path, url=server.url("/facades.tar.gz"), sha256="0" * 64, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []          # corrupt archive deleted, nothing extracted


def _outside_target(tmp_path: Path) -> Path:
    return tmp_path / "outside" / "evil.txt"


def _malicious(kind: str, tmp_path: Path) -> bytes:
    evil = b"owned\n"
    ok = _file("facades/ok.txt", b"fine\n")
    if kind == "dotdot":
        return _tar_gz([ok, _file("../outside/evil.txt", evil)])
    if kind == "absolute":
        return _tar_gz([ok, _file(str(_outside_target(tmp_path)), evil)])
    if kind == "symlink-escape":
        link = tarfile.TarInfo("facades/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
        return _tar_gz([ok, (link, None), _file("facades/link/evil.txt", evil)])
    if kind == "symlink-absolute":
        link = tarfile.TarInfo("facades/link")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path / "outside")
        return _tar_gz([ok, (link, None), _file("facades/link/evil.txt", evil)])
    if kind == "symlink-chain":       # each link looks harmless on its own
        a = tarfile.TarInfo("facades/a")
        a.type, a.linkname = tarfile.SYMTYPE, "."
        b = tarfile.TarInfo("facades/a/b")
        b.type, b.linkname = tarfile.SYMTYPE, "../../outside"
        return _tar_gz([ok, (a, None), (b, None), _file("facades/a/b/evil.txt", evil)])
    if kind == "hardlink-escape":
        h = tarfile.TarInfo("facades/hard")
        h.type, h.linkname = tarfile.LNKTYPE, "../outside/evil.txt"
        return _tar_gz([ok, (h, None)])
    if kind == "device":
        d = tarfile.TarInfo("facades/null")
        d.type, d.devmajor, d.devminor = tarfile.CHRTYPE, 1, 3
        return _tar_gz([ok, (d, None)])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-escape", "symlink-absolute", "symlink-chain",
                                  "hardlink-escape", "device"])
def test_malicious_archives_are_refused(server, tmp_path, kind):
    (tmp_path / "outside").mkdir()
    dest = tmp_path / "dest"
    server.files["/facades.tar.gz"] = _malicious(kind, tmp_path)
    with pytest.raises(DataError, match="refused: .*(outside the destination|absolute path|device file)") as e:
        download("facades", dest, url=server.url("/facades.tar.gz"), progress=False)
    assert str(e.value).count("refused") == 1 and "\n" not in str(e.value)
    assert not _outside_target(tmp_path).exists()
    assert list((tmp_path / "outside").iterdir()) == []
    assert not (dest / "facades").exists()                      # all or nothing
    assert _leftovers(dest) == []


def test_safe_extract_never_replaces_without_overwrite(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_gz([_file("facades/x.txt", b"new\n")]))
    dest = tmp_path / "dest"
    (dest / "facades").mkdir(parents=True)
    (dest / "facades" / "keep.txt").write_text("mine\n")
    with pytest.raises(DataError, match="already exists"):
        safe_extract(archive, dest, progress=False)
    assert (dest / "facades" / "keep.txt").read_text() == "mine\n"
    safe_extract(archive, dest, overwrite=True, progress=False)
    assert (dest / "facades" / "x.txt").read_text() == "new\n"
    assert not (dest / "facades" / "keep.txt").exists()


def test_existing_dataset_folder_is_refused_before_downloading(server, tmp_path):
    (tmp_path / "facades").mkdir()
    server.files["/facades.tar.gz"] = _dataset_archive()[0]
    with pytest.raises(DataError, match="already exists.*--overwrite"):
        download("facades", tmp_path, url=server.url("/facades.tar.gz"), progress=False)
    assert server.requests == []


def test_http_error_and_unknown_name(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        download("facades", tmp_path, url=server.url("/missing.tar.gz"), progress=False)
    with pytest.raises(DataError, match="unknown data set.*facades"):
        download("no-such-set", tmp_path, progress=False)
    with pytest.raises(DataError, match="not an http"):
        download("facades", tmp_path, url="file:///etc/passwd", progress=False)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_offline_gives_one_clear_line(tmp_path, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/facades.tar.gz"
    rc = main(["data", "download", "facades", str(tmp_path), "--url", url, "--no-progress", "--timeout", "5"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "cannot download" in err and "--url" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_download(server, tmp_path, capsys):
    archive, files = _dataset_archive()
    server.files["/facades.tar.gz"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    rc = main(["data", "download", "facades", str(tmp_path), "--url", server.url("/facades.tar.gz"),
               "--sha256", digest.upper(), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and digest in out and "verified" in out
    assert (tmp_path / "facades" / "val" / "2.bin").read_bytes() == files["facades/val/2.bin"]
    assert os.listdir(tmp_path) == ["facades"]
