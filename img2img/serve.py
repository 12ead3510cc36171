"""``img2img serve MODEL``: a local web page (Gradio) to try a trained model in a browser.

* pix2pix (a run folder, ``model.pt`` / ``latest.pt`` or an ``.onnx`` export): draw on a
  white canvas with a black brush, or upload an image, and see the translation beside it
  (same size as the input).
* DCGAN / MLP GAN: a grid of samples for a seed, and a walk between the noise of two seeds.

The model is loaded once, at start-up; requests run one at a time on it. Uploads larger
than ``max_upload_mb`` are refused by the server before they are stored, and uploads that
do not decode, or have more than ``max_pixels`` pixels, are refused with a message on the
page (the page stays usable). Gradio is an optional dependency: ``pip install 'img2img[serve]'``.

Python API::

    from img2img.serve import serve
    server = serve("runs/demo", port=0, block=False)   # port 0: any free port
    print(server.url)                                  # http://127.0.0.1:PORT/
    server.close()

Only the public API of img2img is used here (:class:`img2img.Translator`,
:class:`img2img.Sampler`, and ``ConfigError`` for one-line errors).
"""
from __future__ import annotations

import contextlib
import html
import io
import math
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import DIRECTIONS, ConfigError
from .data.io import to_rgb

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_UPLOAD_MB = 20.0
MAX_PIXELS = 40_000_000           # a 7,000 x 5,700 photo; translation memory grows with it
MAX_SAMPLES = 64
MAX_STEPS = 16
SEED_MAX = 2**31 - 1
PANEL_HEIGHT = 460                # CSS pixels of the canvas and the output panels
CSS = "#output img { width: 100%; height: 100%; object-fit: contain; }"     # outputs fill their panel


class UploadError(ValueError):
    """An upload the server refuses (undecodable, too large); the message names the file."""


# -- decoding uploads ------------------------------------------------------------------------
def decode_upload(path: str | Path, name: str | None = None, *, max_bytes: int | None = None,
                  max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an uploaded file into an RGB image, or raise :class:`UploadError` naming it.

    The file size and the pixel count (read from the header, before any pixel is
    decoded, so decompression bombs are refused cheaply) are checked first. EXIF
    orientation is applied; transparency is composited on white.
    """
    path = Path(path)
    name = name or path.name
    try:
        size = path.stat().st_size
    except OSError as e:
        raise UploadError(f"{name}: cannot be read ({e.strerror or e})") from None
    if size == 0:
        raise UploadError(f"{name}: the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise UploadError(f"{name}: {_bytes(size)} is over the upload limit of {_bytes(max_bytes)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
            w, h = im.size
            if w * h > max_pixels:
                raise UploadError(f"{name}: {w}x{h} is {w * h / 1e6:.3g} megapixels, over the limit of "
                                  f"{max_pixels / 1e6:.3g} megapixels; resize it first")
            im.load()
            im = ImageOps.exif_transpose(im)
    except UploadError:
        raise
    except UnidentifiedImageError:
        raise UploadError(f"{name}: not an image file this server can decode") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(f"{name}: refused, its header announces too many pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:       # truncated or corrupt data
        raise UploadError(f"{name}: the image data is damaged ({_first_line(e, path)})") from None
    return to_rgb(im)


def _bytes(n: float) -> str:
    """1536 -> '1.5 KB' (powers of 1024)."""
    for unit in ("bytes", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} GB"


def _first_line(e: BaseException, path: Path | None = None) -> str:
    """The first line of an error's message, with the server-side path of an upload left out."""
    text = (str(e).splitlines() or [""])[0]
    if path is not None:
        text = text.replace(str(path), "the file")
    return text or type(e).__name__


# -- the model ---------------------------------------------------------------------------------
def _load_translators(model: str | Path, direction: str | None, **kw) -> dict[str, Any]:
    """{direction: Translator} for the directions the page offers: ``direction`` alone when given,
    else every direction the model translates (a pix2pix model: its training direction; a CycleGAN
    model: both, or the one its ONNX file holds)."""
    from . import Translator
    tr = Translator.load(model, direction=direction, **kw)
    out = {tr.direction: tr}
    if direction is None:
        for other in tr.family.directions(tr.cfg):
            if other not in out:
                try:
                    out[other] = Translator.load(model, direction=other, **kw)
                except ConfigError:                 # an ONNX file holds one direction
                    pass
    return out


def load_model(model: str | Path, *, device: str = "auto", policy: str = "resize",
               direction: str | None = None, batch_size: int = 1) -> dict[str, Any] | Any:
    """A translation model as ``{direction: Translator}``, or a noise model as a ``Sampler``.

    Tries the translation loader first; when it refuses the model (ConfigError, as it
    does for models that generate from noise) the model is loaded as a Sampler; if that
    fails too, the translation loader's message is the one raised.
    """
    from . import Sampler
    if direction is not None and direction not in DIRECTIONS:
        raise ConfigError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    try:
        return _load_translators(model, direction, device=device, policy=policy, batch_size=batch_size)
    except ConfigError as translate_error:
        try:
            sampler = Sampler.load(model, device=device)
        except Exception:
            if Path(model).suffix.lower() == ".onnx":        # Sampler reads checkpoints only
                raise ConfigError(f"{translate_error} (serve shows DCGAN/MLP models from their run folder or "
                                  "model.pt, not from ONNX files)") from None
            raise translate_error from None
        if direction is not None:
            raise ConfigError(f"{model}: --direction is for translation models; this one generates from "
                              "noise") from None
        return sampler


def model_title(model: str | Path) -> str:
    """A short name for the page: the run folder's name, or the file's."""
    p = Path(model)
    if p.name in ("model.pt", "latest.pt") and p.parent.name:
        return p.parent.name
    return p.name or str(p)


# -- the page ----------------------------------------------------------------------------------
@dataclass
class Server:
    """A running page: ``url``, the Gradio ``app`` (``gr.Blocks``) and :meth:`close`."""

    app: Any
    url: str
    host: str
    port: int
    closed: bool = field(default=False)

    def close(self) -> None:
        """Stop the server and free the port (Gradio's own "Closing server" line is not printed)."""
        if not self.closed:
            with contextlib.redirect_stdout(io.StringIO()):
                self.app.close()
            self.closed = True

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _import_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")    # no telemetry calls from a local tool
    try:
        import gradio as gr
    except ImportError:
        raise ConfigError("serve needs Gradio: pip install 'img2img[serve]'") from None
    return gr


def canvas_size(model_size: int) -> int:
    """Drawing canvas side: the model's size, scaled by a whole factor to at least 256 px."""
    return model_size * max(1, math.ceil(256 / model_size))


def _settings_table(rows: list[tuple[str, str]]) -> str:
    body = "\n".join(f"| {html.escape(k)} | {html.escape(v)} |" for k, v in rows)
    return "| setting | value |\n|---|---|\n" + body


def build_app(model: str | Path, loaded, *, policy: str, max_upload_mb: float, max_pixels: int):
    """The gr.Blocks page for a loaded model (see :func:`load_model`)."""
    gr = _import_gradio()
    title = model_title(model)
    with gr.Blocks(title=f"img2img: {title}", delete_cache=(3600, 3600)) as app:
        if isinstance(loaded, dict):
            _translation_page(gr, title, loaded, policy=policy, max_upload_mb=max_upload_mb, max_pixels=max_pixels)
        else:
            _sampling_page(gr, app, title, loaded)
    return app


def _translation_page(gr, title: str, translators: dict[str, Any], *, policy: str, max_upload_mb: float,
                      max_pixels: int) -> None:
    first = next(iter(translators.values()))
    cfg = first.cfg
    side = canvas_size(first.size)
    lock = threading.Lock()
    max_bytes = int(max_upload_mb * 2**20)

    gr.Markdown(f"# img2img: {html.escape(title)}\n{html.escape(first.describe())}")
    with gr.Accordion("model and settings", open=False):
        gr.Markdown(_settings_table([
            ("model", str(first.source) if getattr(first, "source", "") else title),
            ("directions", ", ".join(translators)),
            ("trained at", f"{first.size}x{first.size} px"),
            ("input / output", "colorization (L -> ab)" if cfg.data.colorization else
             f"{cfg.model.input_nc} -> {cfg.model.output_nc} channels, {cfg.data.color}"),
            ("policy", policy + (" (any size in: resized to the model's size and back)" if policy == "resize"
                                 else " (run at the image's own size, padded)")),
            ("device", str(first.device)),
            ("upload limits", f"{max_upload_mb:g} MB, {max_pixels / 1e6:.3g} megapixels"),
        ]))
    with gr.Row(equal_height=False):
        with gr.Column():
            direction = gr.Radio(list(translators), value=next(iter(translators)), label="direction",
                                 interactive=len(translators) > 1)
            with gr.Tabs():
                with gr.Tab("Draw", id="draw"):
                    canvas = gr.ImageEditor(
                        value=Image.new("RGB", (side, side), "white"), type="pil", image_mode="RGBA",
                        sources=(), canvas_size=(side, side), fixed_canvas=True, layers=False,
                        transforms=(), brush=gr.Brush(colors=["#000000"], default_color="#000000",
                                                      color_mode="fixed", default_size=max(2, side // 96)),
                        eraser=gr.Eraser(default_size=max(6, side // 24)), label="draw an input",
                        elem_id="canvas", buttons=["download"], height=PANEL_HEIGHT)
                    draw_btn = gr.Button("Translate drawing", variant="primary", elem_id="translate-drawing")
                with gr.Tab("Upload", id="upload"):
                    upload = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                      label=f"upload an image (at most {max_upload_mb:g} MB)", elem_id="upload")
                    upload_btn = gr.Button("Translate upload", variant="primary", elem_id="translate-upload")
        with gr.Column():
            output = gr.Image(type="pil", format="png", label="output", interactive=False, elem_id="output",
                              buttons=["download", "fullscreen"], height=PANEL_HEIGHT)
            status = gr.Markdown("Draw on the canvas (or upload an image) and press Translate.", elem_id="status")

    def run(image: Image.Image, what: str, d: str):
        tr = translators.get(d)
        if tr is None:
            raise gr.Error(f"unknown direction {html.escape(str(d), quote=False)}", print_exception=False)
        with lock:
            t0 = time.perf_counter()
            try:
                out = tr(image)
            except (RuntimeError, ValueError, MemoryError) as e:      # e.g. out of memory on a huge --policy pad
                raise gr.Error(f"translation failed: {html.escape(_first_line(e), quote=False)}",
                               print_exception=False) from None
            dt = time.perf_counter() - t0
        w, h = image.size
        return out, f"{html.escape(what)}: {w}x{h} in, {out.size[0]}x{out.size[1]} out, {dt:.2f} s ({d})"

    def translate_drawing(drawing, direction):
        composite = (drawing or {}).get("composite") if isinstance(drawing, dict) else drawing
        if composite is None:
            raise gr.Error("nothing drawn yet: draw on the canvas first", print_exception=False)
        return run(to_rgb(composite), "drawing", direction)

    def translate_upload(upload, direction):
        """``upload``: Gradio's raw file record ({"path", "orig_name", ...}), not yet decoded."""
        if not upload:
            raise gr.Error("no image uploaded yet", print_exception=False)
        path = upload.get("path") if isinstance(upload, dict) else upload
        name = (upload.get("orig_name") if isinstance(upload, dict) else None) or Path(path).name
        try:
            image = decode_upload(path, name, max_bytes=max_bytes, max_pixels=max_pixels)
        except UploadError as e:
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None
        return run(image, name, direction)

    common = dict(outputs=[output, status], concurrency_limit=1, concurrency_id="model")
    draw_btn.click(translate_drawing, inputs=[canvas, direction], api_name="translate_drawing", **common)
    # preprocess=False: the uploaded file is decoded here (with the size checks and a message on the page),
    # not by Gradio (whose decoding errors would show as a bare "Error").
    upload_btn.click(translate_upload, inputs=[upload, direction], api_name="translate_upload",
                     preprocess=False, **common)
    upload.upload(translate_upload, inputs=[upload, direction], api_name=False, preprocess=False, **common)


def grid_image(images, nrow: int | None = None, min_width: int = 512) -> Image.Image:
    """(N, 3, H, W) in [0, 1] -> one PIL grid (white 2-px gaps), enlarged by a whole factor
    (nearest neighbour) to at least ``min_width`` pixels wide so small samples stay visible."""
    from torchvision.utils import make_grid
    n = images.shape[0]
    grid = make_grid(images.float().clamp(0, 1), nrow=nrow or max(1, math.ceil(math.sqrt(n))), padding=2,
                     pad_value=1.0)
    arr = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    im = Image.fromarray(arr)
    factor = max(1, math.ceil(min_width / im.width))
    return im.resize((im.width * factor, im.height * factor), Image.NEAREST) if factor > 1 else im


def _sampling_page(gr, app, title: str, sampler) -> None:
    cfg = sampler.cfg
    m = cfg.model
    lock = threading.Lock()
    gr.Markdown(f"# img2img: {html.escape(title)}\n{html.escape(m.kind)} generator, "
                f"{m.image_size}x{m.image_size} px, {m.output_nc} channel(s), z: {cfg.family.z_dim}-d {cfg.family.noise} noise; "
                f"device {sampler.device}")
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### Samples\nImage *i* of a seed is always the same image.")
            seed = gr.Number(0, precision=0, minimum=0, maximum=SEED_MAX, label="seed", elem_id="seed")
            n = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="images", elem_id="n")
            sample_btn = gr.Button("Sample", variant="primary", elem_id="sample")
            gr.Markdown("### Interpolation\nA walk from seed A's noise to seed B's.")
            with gr.Row():
                seed_a = gr.Number(1, precision=0, minimum=0, maximum=SEED_MAX, label="seed A", elem_id="seed-a")
                seed_b = gr.Number(2, precision=0, minimum=0, maximum=SEED_MAX, label="seed B", elem_id="seed-b")
            steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="steps", elem_id="steps")
            interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interpolate")
        with gr.Column(scale=2):
            grid = gr.Image(type="pil", format="png", label="samples", interactive=False, elem_id="samples",
                            buttons=["download", "fullscreen"])
            walk = gr.Image(type="pil", format="png", label="interpolation", interactive=False,
                            elem_id="interpolation", buttons=["download", "fullscreen"])
            status = gr.Markdown("", elem_id="status")

    def as_int(v, name: str, lo: int, hi: int) -> int:
        if v is None or not float(v).is_integer() or not lo <= int(v) <= hi:
            raise gr.Error(f"{name} must be a whole number from {lo} to {hi}", print_exception=False)
        return int(v)

    def do_sample(s, k):
        s, k = as_int(s, "seed", 0, SEED_MAX), as_int(k, "images", 1, MAX_SAMPLES)
        with lock:
            t0 = time.perf_counter()
            images = sampler.sample(k, s)
            dt = time.perf_counter() - t0
        return grid_image(images), f"{k} sample(s) of seed {s} in {dt:.2f} s"

    def do_interpolate(a, b, k):
        a, b = as_int(a, "seed A", 0, SEED_MAX), as_int(b, "seed B", 0, SEED_MAX)
        k = as_int(k, "steps", 2, MAX_STEPS)
        with lock:
            images = sampler.interpolate(a, b, k)
        return grid_image(images, nrow=k), f"{k} steps from seed {a} to seed {b}"

    common = dict(concurrency_limit=1, concurrency_id="model")
    sample_btn.click(do_sample, inputs=[seed, n], outputs=[grid, status], api_name="sample", **common)
    interp_btn.click(do_interpolate, inputs=[seed_a, seed_b, steps], outputs=[walk, status],
                     api_name="interpolate", **common)
    # something to look at straight away
    app.load(do_sample, inputs=[seed, n], outputs=[grid, status], api_name=False, **common)


# -- serving -----------------------------------------------------------------------------------
def _bind(host: str, port: int) -> int | None:
    """Bind a socket to ``host:port`` and let it go: the port bound (``port`` 0: a free one chosen by
    the system), or None when it is taken. A server started on it right after will get it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: {e.strerror or e}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)      # as uvicorn does: TIME_WAIT is no obstacle
        try:
            s.bind(address)
        except OSError:
            return None
        return s.getsockname()[1]


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nobody listens on now (for tests and ``--port 0``)."""
    port = _bind(host, 0)
    if port is None:
        raise ConfigError(f"--host {host}: cannot listen on this address")
    return port


def _is_loopback(host: str) -> bool:
    import ipaddress
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))
    except (socket.gaierror, ValueError):
        return False


def serve(model: str | Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, device: str = "auto",
          policy: str = "resize", direction: str | None = None, max_upload_mb: float = MAX_UPLOAD_MB,
          max_pixels: int = MAX_PIXELS, block: bool = True, quiet: bool = False) -> Server:
    """Load ``model`` once and serve its page at http://host:port/.

    ``block=True`` serves until Ctrl-C; ``block=False`` returns the running :class:`Server`
    at once (call ``.close()``). ``port=0`` picks a free port. Raises ConfigError (one
    line) for a missing Gradio, a bad model file, or a port in use.
    """
    _import_gradio()                                   # a missing Gradio is reported before the model loads
    if max_upload_mb <= 0 or max_pixels <= 0:
        raise ConfigError("the upload limits must be positive")
    if port == 0:
        port = free_port(host)
    elif not 0 < port < 65536:
        raise ConfigError(f"port must be from 1 to 65535, got {port}")
    if _bind(host, port) is None:
        raise ConfigError(f"{host}:{port} is already in use; choose another --port")
    loaded = load_model(model, device=device, policy=policy, direction=direction)
    app = build_app(model, loaded, policy=policy, max_upload_mb=max_upload_mb, max_pixels=max_pixels)
    app.queue(default_concurrency_limit=1)
    try:
        _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                               share=False, max_file_size=int(max_upload_mb * 2**20), show_error=False,
                               footer_links=["api"], enable_monitoring=False, ssr_mode=False, mcp_server=False,
                               pwa=False, inbrowser=False, css=CSS)
    except OSError as e:                               # the port was taken between the check and the start
        app.close()
        raise ConfigError(f"{host}:{port}: cannot serve there ({_first_line(e)})") from None
    server = Server(app=app, url=url, host=host, port=port)
    if not quiet:
        what = "translation" if isinstance(loaded, dict) else "sampling"
        print(f"img2img serve: {model_title(model)} ({what}) at {url} (Ctrl-C to stop)", flush=True)
        if not _is_loopback(host):
            print(f"img2img serve: note: listening on {host}, so other computers on the network can use this "
                  "page; there is no login", flush=True)
    if block:
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return server
