"""`img2img serve`: upload decoding, model loading, and the real server called as a client would.

The server tests start Gradio on 127.0.0.1 (a free port), call it with gradio_client, and
shut it down at the end; they are skipped, with the reason shown, when Gradio is not installed
(``pip install -e '.[serve]'`` or ``'.[dev]'``).
"""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from img2img import Sampler, Translator
from img2img.cli import main
from img2img.config import ConfigError
from img2img.data.io import to_rgb
from img2img.serve import UploadError, canvas_size, decode_upload, free_port, grid_image, load_model, serve
from tiny_models import make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
HAVE_GRADIO = importlib.util.find_spec("gradio") is not None and importlib.util.find_spec("gradio_client") is not None
NO_GRADIO = "Gradio is not installed (pip install -e '.[serve]'): the server is not tested"
needs_gradio = pytest.mark.skipif(not HAVE_GRADIO, reason=NO_GRADIO)


def _rgb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB")).astype(np.int16)


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), np.full_like(xx, 90)], -1)
    img = img + rng.integers(-20, 20, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _drawing(side: int = 256, transparent: bool = False) -> Image.Image:
    """Black strokes on white (or on a transparent background, as a canvas layer is)."""
    from PIL import ImageDraw
    im = Image.new("RGBA", (side, side), (255, 255, 255, 0 if transparent else 255))
    d = ImageDraw.Draw(im)
    d.ellipse((side // 5, side // 5, 4 * side // 5, 4 * side // 5), outline=(0, 0, 0, 255), width=4)
    d.line((side // 4, side // 2, 3 * side // 4, side // 2), fill=(0, 0, 0, 255), width=4)
    return im


# -- decoding uploads (no Gradio needed) --------------------------------------------------------
def test_transparency_is_composited_on_white_and_16_bit_is_scaled(tmp_path):
    rgba = Image.new("RGBA", (4, 3), (10, 20, 30, 0))
    rgba.putpixel((0, 0), (10, 20, 30, 255))
    out = np.asarray(to_rgb(rgba))
    assert out.shape == (3, 4, 3) and out[0, 0].tolist() == [10, 20, 30] and out[2, 3].tolist() == [255] * 3
    la = Image.new("LA", (2, 2), (0, 0))
    assert np.asarray(to_rgb(la)).min() == 255
    pal = Image.new("P", (2, 2), 0)
    pal.putpalette([0, 0, 0] + [200, 0, 0] * 255)
    pal.putpixel((1, 1), 1)
    pal.info["transparency"] = 0
    p = tmp_path / "pal.png"
    pal.save(p)
    out = np.asarray(decode_upload(p))
    assert out[0, 0].tolist() == [255, 255, 255] and out[1, 1].tolist() == [200, 0, 0]
    gray16 = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    p16 = tmp_path / "g16.png"
    gray16.save(p16)
    assert np.asarray(decode_upload(p16))[0, :, 0].tolist() == [0, 128, 255]
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    assert np.asarray(to_rgb(cmyk)).min() == 255


def test_exif_orientation_is_applied(tmp_path):
    im = _photo(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6                                            # rotate 90 degrees clockwise to display
    p = tmp_path / "rotated.jpg"
    im.save(p, exif=exif, quality=95)
    assert decode_upload(p).size == (20, 40)


def test_bad_uploads_are_refused_with_one_line_naming_the_file(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image\n" * 10)
    good = tmp_path / "good.png"
    _photo(300, 200).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = [(empty, {}, "empty.png: the file is empty"),
             (junk, {}, "junk.png: not an image file"),
             (truncated, {}, "truncated.png: the image data is damaged"),
             (good, {"max_pixels": 50_000}, "good.png: 300x200 is 0.06 megapixels, over the limit of 0.05 "),
             (good, {"max_bytes": 1536}, f"good.png: {good.stat().st_size / 1024:.3g} KB is over the upload "
                                         "limit of 1.5 KB")]
    for path, limits, message in cases:
        with pytest.raises(UploadError) as e:
            decode_upload(path, **limits)
        assert str(e.value).startswith(message) and "\n" not in str(e.value), str(e.value)
        assert str(tmp_path) not in str(e.value)                # the server's paths are not shown
    assert decode_upload(good, "shown-name.png", max_pixels=60_000).size == (300, 200)


def test_grid_image_and_canvas_size():
    images = torch.zeros(5, 3, 8, 8)
    images[:, 0] = 1.0                                          # red squares
    g = grid_image(images, nrow=3, min_width=10)                # 3 columns of 8 + 2-px gaps: 3*10+2 = 32 wide
    assert g.size == (32, 22)
    assert np.asarray(g)[2, 2].tolist() == [255, 0, 0] and np.asarray(g)[0, 0].tolist() == [255, 255, 255]
    big = grid_image(images, nrow=3, min_width=100)             # enlarged 4x (nearest): 128 wide
    assert big.size == (128, 88) and np.asarray(big)[8, 8].tolist() == [255, 0, 0]
    assert [canvas_size(s) for s in (32, 64, 100, 256, 512)] == [256, 256, 300, 256, 512]


# -- loading ------------------------------------------------------------------------------------
def test_load_model_picks_the_loader_and_checks_the_direction(tmp_path):
    p2p = make_checkpoint(tmp_path / "p2p.pt")
    dcgan = make_checkpoint(tmp_path / "dcgan.pt", kind="dcgan", image_size=32)
    loaded = load_model(p2p, device="cpu")
    assert list(loaded) == ["AtoB"] and isinstance(loaded["AtoB"], Translator)
    assert isinstance(load_model(dcgan, device="cpu"), Sampler)
    btoa = make_checkpoint(tmp_path / "btoa.pt", direction="BtoA")
    assert list(load_model(btoa, device="cpu", direction="BtoA")) == ["BtoA"]
    with pytest.raises(ConfigError, match="translates AtoB only"):
        load_model(p2p, device="cpu", direction="BtoA")
    with pytest.raises(ConfigError, match="--direction is for translation models"):
        load_model(dcgan, device="cpu", direction="AtoB")
    if importlib.util.find_spec("onnxruntime") is not None:
        from img2img import export_onnx
        export_onnx(dcgan, tmp_path / "dcgan.onnx", exporter="torchscript")
        with pytest.raises(ConfigError, match=r"dcgan.onnx: .*not from ONNX files\)$"):
            load_model(tmp_path / "dcgan.onnx", device="cpu")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(Exception, match="junk.pt"):
        load_model(junk, device="cpu")
    cyc = make_checkpoint(tmp_path / "cyc.pt", kind="cyclegan")          # translates both ways
    both = load_model(cyc, device="cpu")
    assert list(both) == ["AtoB", "BtoA"] and [t.direction for t in both.values()] == ["AtoB", "BtoA"]
    x = torch.rand(3, 32, 32)
    assert not torch.allclose(both["AtoB"](x), both["BtoA"](x))            # two generators
    assert list(load_model(cyc, device="cpu", direction="BtoA")) == ["BtoA"]


def test_missing_gradio_is_one_line(tmp_path, monkeypatch, capsys):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    monkeypatch.setitem(sys.modules, "gradio", None)           # "import gradio" raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'img2img\[serve\]'"):
        serve(ckpt, port=0, block=False)
    assert main(["serve", str(ckpt), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "img2img serve: error: serve needs Gradio: pip install 'img2img[serve]'"


@needs_gradio
def test_bad_model_and_busy_port_are_one_line_errors(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing.pt"), "--port", "0"]) == 2
    assert "nothing.pt" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(make_checkpoint(tmp_path / "m.pt")), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"img2img serve: error: 127.0.0.1:{port} is already in use; choose another --port"


# -- the real server, called as a client would ----------------------------------------------------
def Client(url: str):
    from gradio_client import Client
    return Client(url, verbose=False)


def handle_file(path):
    from gradio_client import handle_file
    return handle_file(str(path))


@pytest.fixture(scope="module")
def p2p_server(tmp_path_factory):
    """A tiny 32-px pix2pix model served with small upload limits; counts model loads."""
    if not HAVE_GRADIO:
        pytest.skip(NO_GRADIO)
    folder = tmp_path_factory.mktemp("p2p")
    ckpt = make_checkpoint(folder / "tiny.pt")
    loads = mock.patch.object(Translator, "load", side_effect=Translator.load)
    with loads as counted:
        server = serve(ckpt, port=0, device="cpu", max_upload_mb=0.5, max_pixels=200_000, block=False, quiet=True)
    try:
        yield server, ckpt, counted, Client(server.url)
    finally:
        server.close()


def _post_file(url: str, path: Path) -> tuple[int, str]:
    """POST one file as multipart form data (field "files"), as the page does; (status, body)."""
    import urllib.error
    boundary = "img2imgTestBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _editor_value(path: Path) -> dict:
    return {"background": None, "layers": [handle_file(path)], "composite": handle_file(path)}


def test_server_translates_a_drawing_and_uploads_at_their_size(p2p_server, tmp_path):
    server, ckpt, loads, client = p2p_server
    assert server.host == "127.0.0.1" and server.url == f"http://127.0.0.1:{server.port}/"
    reference = Translator.load(ckpt, device="cpu")
    for transparent in (False, True):                           # a canvas layer has a transparent background
        p = tmp_path / f"drawing_{transparent}.png"
        _drawing(256, transparent).save(p)
        out, status = client.predict(_editor_value(p), "AtoB", api_name="/translate_drawing")
        got = Image.open(out)
        assert got.size == (256, 256) and status.startswith("drawing: 256x256 in, 256x256 out")
        expected = _rgb(reference(_drawing(256).convert("RGB")))      # the same strokes on white
        assert np.abs(_rgb(got) - expected).max() <= 1
    photo = tmp_path / "photo.png"
    _photo(45, 30).save(photo)
    out, status = client.predict(handle_file(photo), "AtoB", api_name="/translate_upload")
    got = Image.open(out)
    assert got.size == (45, 30) and status.startswith("photo.png: 45x30 in, 45x30 out")
    assert np.abs(_rgb(got) - _rgb(reference(Image.open(photo)))).max() <= 1
    assert loads.call_count == 1                                # one model load for all the requests


def test_server_refuses_bad_uploads_with_a_message_and_stays_usable(p2p_server, tmp_path):
    from gradio_client.exceptions import AppError
    server, _, _, client = p2p_server
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"GIF89a but not really an image" * 20)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (600, 400), "white").save(wide)           # 0.24 megapixels > 0.2, a tiny file
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (500, 400, 3), dtype=np.uint8)).save(noise)
    assert noise.stat().st_size > 0.5 * 2**20                  # over the 0.5 MB upload limit
    for path, message in [(junk, "junk.png: not an image file this server can decode"),
                          (wide, "wide.png: 600x400 is 0.24 megapixels, over the limit of 0.2 megapixels")]:
        with pytest.raises(AppError) as e:
            client.predict(handle_file(path), "AtoB", api_name="/translate_upload")
        assert message in str(e.value) and "Traceback" not in str(e.value)
    with pytest.raises(Exception, match="exceeds the maximum file size of 524288 bytes"):   # the client checks
        client.predict(handle_file(noise), "AtoB", api_name="/translate_upload")
    status, body = _post_file(server.url + "gradio_api/upload", noise)        # and the server's upload route
    assert status == 413 and "File size exceeded maximum allowed size of 524288 bytes" in body, (status, body)
    with pytest.raises(AppError, match="nothing drawn yet"):
        client.predict({"background": None, "layers": [], "composite": None}, "AtoB",
                       api_name="/translate_drawing")
    good = tmp_path / "good.png"
    _photo(20, 24).save(good)
    out, _ = client.predict(handle_file(good), "AtoB", api_name="/translate_upload")
    assert Image.open(out).size == (20, 24)
    with urllib.request.urlopen(server.url, timeout=30) as r:   # the page itself still loads
        assert r.status == 200 and "img2img: tiny.pt" in r.read().decode()


@needs_gradio
def test_server_translates_with_an_onnx_file(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from img2img import export_onnx
    ckpt = make_checkpoint(tmp_path / "m.pt")
    onnx = tmp_path / "m.onnx"
    export_onnx(ckpt, onnx, exporter="torchscript")
    with serve(onnx, port=0, device="cpu", block=False, quiet=True) as server:
        p = tmp_path / "d.png"
        _drawing(256).save(p)
        out, status = Client(server.url).predict(_editor_value(p), "AtoB",
                                                                  api_name="/translate_drawing")
        expected = _rgb(Translator.load(ckpt, device="cpu")(_drawing(256).convert("RGB")))
        assert np.abs(_rgb(Image.open(out)) - expected).max() <= 2
        with urllib.request.urlopen(server.url, timeout=30) as r:
            assert "onnx" in r.read().decode()


@needs_gradio
def test_dcgan_server_samples_and_interpolates(tmp_path):
    from gradio_client.exceptions import AppError
    ckpt = make_checkpoint(tmp_path / "dcgan.pt", kind="dcgan", image_size=32)
    sampler = Sampler.load(ckpt)
    with serve(ckpt, port=0, device="cpu", block=False, quiet=True) as server:
        client = Client(server.url)
        out, status = client.predict(3, 4, api_name="/sample")
        assert status.startswith("4 sample(s) of seed 3")
        assert np.array_equal(_rgb(Image.open(out)), _rgb(grid_image(sampler.sample(4, 3))))
        out, status = client.predict(1, 2, 5, api_name="/interpolate")
        assert np.array_equal(_rgb(Image.open(out)), _rgb(grid_image(sampler.interpolate(1, 2, 5), nrow=5)))
        assert status == "5 steps from seed 1 to seed 2"
        with pytest.raises(AppError, match="500 is greater than maximum value 64"):   # Gradio's own bounds check
            client.predict(3, 500, api_name="/sample")
        with pytest.raises(AppError, match="-1 is less than minimum value 0"):
            client.predict(-1, 4, api_name="/sample")
        with pytest.raises(AppError, match="seed must be a whole number"):                # ours
            client.predict(None, 4, api_name="/sample")
        out, _ = client.predict(0, 1, api_name="/sample")       # still serving after the refusals
        assert Image.open(out).size == grid_image(sampler.sample(1, 0)).size


@needs_gradio
def test_cli_serves_until_ctrl_c(tmp_path):
    """The real command in its own process: prints its URL, serves the page, stops cleanly on SIGINT."""
    ckpt = make_checkpoint(tmp_path / "m.pt")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "img2img", "serve", str(ckpt), "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # Ctrl-C reaches it even when this test runs in a background job (which ignores SIGINT)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()                           # blocks until the server is up (or the process ends)
        assert line.startswith(f"img2img serve: m.pt (translation) at http://127.0.0.1:{port}/"), \
            line + proc.stderr.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with socket.socket() as s:                                  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
