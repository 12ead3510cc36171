"""Convolutions as explicit matrix products on the CPU, taken where they measure faster.

The U-Net's inner levels run 512-1024-channel 4x4 convolutions on 1x1 to
16x16 maps: a handful of positions times a 16 MB weight.  Depending on the
CPU, oneDNN's direct kernels for these (above all the transposed ones and
their backward passes) run far below a plain matrix product (2-50 GFLOP/s
against ~150 on the 2-core AVX2 machine of issue 5) or at about its speed
(AVX-512).  Written as unfold -> matmul (convolution) or matmul -> fold
(transposed convolution), with the backward products ordered so that MKL
never sees its slow narrow-right-operand case, the same layers cost 2-4x less
on the AVX2 machine and more on others.

So the path is chosen per layer shape by measuring, as cuDNN's benchmark mode
does: the first time a layer meets an input shape (and grad mode), both paths
run a few times on random data of that shape (forward, and backward when grad
is enabled) and the faster one is kept.  Choices are cached in memory and in
a small JSON file in the user's cache folder (:func:`cache_path`), keyed by
the CPU (model name and flags), torch version, kernel capability and thread
count; a file that does not parse, or was written for another CPU or torch,
is ignored (and replaced), never trusted.  Measuring uses its own random
generator and its own copies of the weights, so it changes no training state.

:class:`Conv2d` and :class:`ConvTranspose2d` are drop-in subclasses of
torch's layers (same parameters, same state_dict keys), swapped into a built
network by :func:`use_matmul_convs` (the networks themselves are written with
plain ``nn.Conv2d`` / ``nn.ConvTranspose2d``).  Only float32 CPU tensors of
ungrouped undilated zero-padded layers outside autocast are candidates, never while exporting
to ONNX, tracing or compiling; everything else goes to torch's own kernel.
Results agree with torch's to float32 rounding (tests/test_smallconv.py).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..files import atomic_write_text

LARGE = 256                 # positions per image from which products are done image by image
MAX_POSITIONS = 128 * 128   # output (conv) or input (transposed) positions per image above which torch's kernel
                            # is taken unmeasured: the matrix path's unfold/fold copies grow with the map
FEW_CHANNELS = 4            # ... except for transposed convs to <= 4 channels (the U-Net's image layer)
CACHE_VERSION = 1

# torch >= 2.7; before it torch.export sets is_compiling(), which _use_matmul also checks
_is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)


def _wmm(w2: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """w2 @ cols[n] for every n: (M, K) and (N, K, L) -> (N, M, L), as one 2-D product (no copy of
    the weight, which torch.matmul's broadcasting would make).  A narrow right operand (N*L < 16)
    is computed as (cols^T @ w2^T)^T: MKL is several times slower for the narrow case."""
    N, K, L = cols.shape
    if N > 1 and L >= LARGE:                                                   # no big transposed copies
        return torch.stack([w2 @ cols[n] for n in range(N)])
    c = cols[0] if N == 1 else cols.transpose(0, 1).reshape(K, N * L)
    out = (c.t() @ w2.t()).t() if N * L < 16 else w2 @ c                       # M, N*L
    if N == 1:
        return out.contiguous().unsqueeze(0)
    return out.reshape(w2.shape[0], N, L).transpose(0, 1).contiguous()


def _wtmm(w2: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """w2^T @ g[n] for every n: (M, K) and (N, M, L) -> (N, K, L), computed as (g^T @ w2)^T."""
    N, M, L = g.shape
    if L >= LARGE:
        return torch.stack([w2.t() @ g[n] for n in range(N)])
    out = g.transpose(1, 2).reshape(N * L, M) @ w2                              # N*L, K
    return out.reshape(N, L, -1).transpose(1, 2)


class _ConvMM(torch.autograd.Function):
    """y = conv2d(x, w, b) via unfold + matmul, with a hand-ordered backward."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, out_hw):
        N, C, H, W = x.shape
        O, _, kh, kw = w.shape
        cols = F.unfold(x.contiguous(), (kh, kw), padding=padding, stride=stride)  # N, C*kh*kw, L
        w2 = w.reshape(O, -1)
        y = _wmm(w2, cols)                                                       # N, O, L
        if b is not None:
            y = y + b.view(1, O, 1)
        ctx.save_for_backward(cols, w)
        ctx.conf = ((H, W), stride, padding, b is not None)
        return y.reshape(N, O, *out_hw).clone()   # tiny; a view could not be modified in place (ReLU)

    @staticmethod
    def backward(ctx, gy):
        cols, w = ctx.saved_tensors
        (H, W), stride, padding, has_b = ctx.conf
        N, O = gy.shape[:2]
        kh, kw = w.shape[2:]
        g = gy.reshape(N, O, -1)                                                 # N, O, L (a copy if need be)
        w2 = w.reshape(O, -1)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gcols = _wtmm(w2, g)                                                 # N, C*k*k, L
            gx = F.fold(gcols.contiguous(), (H, W), (kh, kw), padding=padding, stride=stride)
        if ctx.needs_input_grad[1]:
            gw = _sum_outer(g, cols).reshape(w.shape)
        if has_b and ctx.needs_input_grad[2]:
            gb = g.sum((0, 2))
        return gx, gw, gb, None, None, None


class _ConvTransposeMM(torch.autograd.Function):
    """y = conv_transpose2d(x, w, b) via matmul + fold, with a hand-ordered backward."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, out_hw):
        N, C, H, W = x.shape
        _, O, kh, kw = w.shape
        x2 = x.reshape(N, C, H * W)
        w2 = w.reshape(C, -1)                                                    # C, O*k*k
        cols = _wtmm(w2, x2).contiguous()                                        # N, O*k*k, L
        y = F.fold(cols, out_hw, (kh, kw), padding=padding, stride=stride)
        if b is not None:
            y = y + b.view(1, O, 1, 1)
        ctx.save_for_backward(x2, w)
        ctx.conf = ((H, W), stride, padding, b is not None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x2, w = ctx.saved_tensors
        (H, W), stride, padding, has_b = ctx.conf
        C, O, kh, kw = w.shape
        N = gy.shape[0]
        gcols = F.unfold(gy, (kh, kw), padding=padding, stride=stride)          # N, O*k*k, L
        w2 = w.reshape(C, -1)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _wmm(w2, gcols).reshape(N, C, H, W)
        if ctx.needs_input_grad[1]:
            gw = _sum_outer(x2, gcols).reshape(w.shape)
        if has_b and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gw, gb, None, None, None


def _sum_outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_n a[n] @ b[n]^T for (N, M, L) and (N, K, L): one (M, N*L) @ (N*L, K) product, or
    accumulated image by image on large maps (no big transposed copies)."""
    N, M, L = a.shape
    if N == 1 or L >= LARGE:
        out = a[0] @ b[0].t()
        for n in range(1, N):
            out.addmm_(a[n], b[n].t())
        return out
    return a.transpose(0, 1).reshape(M, N * L) @ b.transpose(0, 1).reshape(b.shape[1], N * L).t()


def _eligible(layer: nn.Module, x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dim() == 4 and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")                 # --amp bf16: torch's kernels
            and layer.groups == 1 and layer.dilation == (1, 1)
            and layer.padding_mode == "zeros" and isinstance(layer.padding, tuple)
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.onnx.is_in_onnx_export() and not torch.compiler.is_compiling()
            and not _is_exporting()
            and x.layout == torch.strided)


# -- choosing by measuring -----------------------------------------------------------------------------
_choices: dict[str, bool] = {}       # shape key -> True (matrix path) / False (torch's kernel), this process
_loaded = False
_forced: list[bool] = []             # set by :func:`forced` (tests, benchmarks)


@contextlib.contextmanager
def forced(matmul: bool):
    """Within this block every candidate layer takes the matrix path (True) or torch's kernel (False),
    unmeasured: for tests and benchmarks that need one path."""
    _forced.append(matmul)
    try:
        yield
    finally:
        _forced.pop()


def cache_path() -> Path:
    """``$IMG2IMG_CACHE_DIR/conv_kernels.json``, else ``$XDG_CACHE_HOME/img2img/...``, else ``~/.cache/img2img/...``."""
    root = os.environ.get("IMG2IMG_CACHE_DIR")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "img2img")
    return Path(root) / "conv_kernels.json"


def machine_key() -> dict:
    """What a cached choice is only valid for: the CPU (model name + a hash of its flags), torch and
    its kernel capability (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``), and the thread count."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.processor(), platform.machine()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value.strip()
    except OSError:
        pass
    return {"cpu": model, "flags": hashlib.sha1(flags.encode()).hexdigest()[:12], "torch": torch.__version__,
            "capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""), "threads": torch.get_num_threads()}


def _entries() -> list:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    if not (isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("entries"), list)):
        return []
    return [e for e in data["entries"] if isinstance(e, dict) and isinstance(e.get("machine"), dict)
            and isinstance(e.get("choices"), dict)]


def _read_cache() -> dict[str, bool]:
    """The cached choices for this machine, if the file parses and has the expected form (else none)."""
    me = machine_key()
    for e in _entries():
        if e["machine"] == me:
            return {k: v for k, v in e["choices"].items() if isinstance(k, str) and isinstance(v, bool)}
    return {}


def _write_cache() -> None:
    """This machine's choices into the file, beside those of up to 7 other machines / kernel sets."""
    me = machine_key()
    others = [e for e in _entries() if e["machine"] != me][-7:]
    try:
        path = cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = others + [{"machine": me, "choices": dict(sorted(_choices.items()))}]
        atomic_write_text(path, json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1) + "\n")
    except OSError:
        pass                                 # an unwritable cache folder costs a re-measurement next time


def _key(layer: nn.Module, shape: tuple, grad: bool) -> str:
    kind = "convT" if isinstance(layer, nn.ConvTranspose2d) else "conv"
    return (f"{kind} {layer.in_channels}>{layer.out_channels} k{layer.kernel_size[0]}x{layer.kernel_size[1]} "
            f"s{layer.stride[0]}x{layer.stride[1]} p{layer.padding[0]}x{layer.padding[1]} "
            f"b{int(layer.bias is not None)} in{'x'.join(map(str, shape))} {'train' if grad else 'infer'}")


def _time(fn, repeats: int) -> float:
    fn()                                                          # warm-up (kernel set-up, first allocations)
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(layer: nn.Module, shape: tuple, grad: bool, repeats: int = 5) -> tuple[float, float]:
    """Seconds per call of (torch's kernel, the matrix path) for ``layer`` on inputs of ``shape``:
    forward and, with ``grad``, backward to input and weights.  Best of ``repeats``; random data from
    a private generator and detached copies of the weights, so nothing outside changes."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    w = layer.weight.detach().clone().requires_grad_(grad)
    b = None if layer.bias is None else layer.bias.detach().clone().requires_grad_(grad)
    transposed = isinstance(layer, nn.ConvTranspose2d)
    hw = _out_hw(layer, shape)

    def run(matmul: bool):
        def call():
            xi = x.detach().requires_grad_(grad)
            with torch.set_grad_enabled(grad):
                if matmul:
                    y = (_ConvTransposeMM if transposed else _ConvMM).apply(xi, w, b, layer.stride, layer.padding, hw)
                elif transposed:
                    y = F.conv_transpose2d(xi, w, b, layer.stride, layer.padding)
                else:
                    y = F.conv2d(xi, w, b, layer.stride, layer.padding)
                if grad:
                    y.backward(torch.ones_like(y))
        return call

    return _time(run(False), repeats), _time(run(True), repeats)


def _out_hw(layer: nn.Module, shape: tuple) -> tuple[int, int]:
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    if isinstance(layer, nn.ConvTranspose2d):
        return (shape[2] - 1) * sh - 2 * ph + kh, (shape[3] - 1) * sw - 2 * pw + kw
    return (shape[2] + 2 * ph - kh) // sh + 1, (shape[3] + 2 * pw - kw) // sw + 1


def choose(layer: nn.Module, x: torch.Tensor) -> bool:
    layer._last_source = None
    """Whether ``layer`` takes the matrix path for ``x`` (measured once per shape and grad mode)."""
    global _loaded
    if not _eligible(layer, x):
        return False
    hw = _out_hw(layer, tuple(x.shape))
    if hw[0] <= 0 or hw[1] <= 0:
        return False
    transposed = isinstance(layer, nn.ConvTranspose2d)
    positions = x.shape[2] * x.shape[3] if transposed else hw[0] * hw[1]
    if positions > MAX_POSITIONS and not (transposed and layer.out_channels <= FEW_CHANNELS):
        return False
    if _forced:
        return _forced[-1]
    grad = torch.is_grad_enabled()
    key = _key(layer, tuple(x.shape), grad)
    if key not in _choices:
        if not _loaded:
            _choices.update(_read_cache())
            _loaded = True
        if key in _choices:
            layer._last_source = "cached"
        else:
            t_torch, t_mm = measure(layer, tuple(x.shape), grad)
            _choices[key] = t_mm < 0.95 * t_torch          # a tie goes to torch's kernel
            layer._last_source = "measured"
            _write_cache()
    else:
        layer._last_source = "cached"
    return _choices[key]


def summary(module: nn.Module) -> tuple[int, int]:
    """(layers that took the matrix path, layers that took torch's kernel) in ``module``'s last forward."""
    used = [m._last_matmul for m in module.modules()
            if isinstance(m, (Conv2d, ConvTranspose2d)) and getattr(m, "_last_matmul", None) is not None]
    return sum(used), len(used) - sum(used)


def prepare(module: nn.Module, shape: tuple) -> str | None:
    """Make the choices for ``module`` on inputs of ``shape`` (as in training: grad enabled) before the
    first step, and say what they are in one line (None when ``module`` has no swapped layers).  The
    probing forward runs in eval mode, where the networks here change no state (no running-statistics
    update, no dropout draws); every submodule's mode is restored afterwards."""
    if not any(isinstance(m, (Conv2d, ConvTranspose2d)) for m in module.modules()):
        return None
    modes = [(m, m.training) for m in module.modules()]
    try:
        with torch.enable_grad():
            module.eval()(torch.zeros(shape, device=next(module.parameters()).device))
    finally:
        for m, training in modes:
            m.training = training
    mm, native = summary(module)
    sources = [getattr(m, "_last_source", None) for m in module.modules()]
    measured, cached = sources.count("measured"), sources.count("cached")
    how = (f"measured {measured} shape(s) now" if measured else "") + \
          (", " if measured and cached else "") + (f"{cached} from the cache {cache_path()}" if cached else "")
    return (f"CPU convolutions: {mm} of {mm + native} layers as matrix products, {native} on torch's kernels "
            f"(chosen by timing both{'; ' + how if how else ''}; --no-cpu-matmul: torch's everywhere)")


class Conv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return super().forward(x)
        self._last_matmul = use = choose(self, x)
        if use:
            return _ConvMM.apply(x, self.weight, self.bias, self.stride, self.padding, _out_hw(self, tuple(x.shape)))
        return super().forward(x)


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return super().forward(x, output_size)
        use = output_size is None and self.output_padding == (0, 0) and choose(self, x)
        self._last_matmul = use
        if use:
            return _ConvTransposeMM.apply(x, self.weight, self.bias, self.stride, self.padding,
                                          _out_hw(self, tuple(x.shape)))
        return super().forward(x, output_size)


def use_matmul_convs(module: nn.Module) -> nn.Module:
    """Swap every plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` in ``module`` for the subclasses above,
    in place (same parameters and state_dict; only ``forward`` changes).  Returns ``module``."""
    for m in module.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = Conv2d
        elif type(m) is nn.ConvTranspose2d:
            m.__class__ = ConvTranspose2d
    return module
