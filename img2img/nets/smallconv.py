"""Convolutions at small spatial sizes as explicit matrix products (CPU speed).

The U-Net's inner levels run 512-1024-channel 4x4 convolutions on 1x1 to
16x16 maps.  There the work is a handful of positions times a 16 MB weight,
and oneDNN's direct convolution kernels (above all the transposed ones, and
their backward passes) run at 2-50 GFLOP/s on this kind of CPU against ~150
for a plain matrix product.  Written as unfold -> matmul (convolution) or
matmul -> fold (transposed convolution), with the backward products ordered
so that MKL never sees its slow narrow-right-operand case, the same layers
cost 2-4x less (tools/bench.py; measured per layer in the note of issue 5).

:class:`Conv2d` and :class:`ConvTranspose2d` are drop-in subclasses of
torch's layers (same parameters, same state_dict keys), swapped into a built
network by :func:`use_matmul_convs` (the networks themselves are written with
plain ``nn.Conv2d`` / ``nn.ConvTranspose2d``).  They take the matrix path only
on the CPU, for ungrouped undilated layers whose low-resolution
side has at most ``SMALL_POSITIONS`` positions per image, or transposed
convolutions to at most ``FEW_CHANNELS`` channels (the U-Net's output layer,
128 -> 3 channels at 256x256, runs at ~20 GFLOP/s in oneDNN), and never while
exporting to ONNX or tracing; everything else goes to torch's own kernel.
Results agree with torch's to float32 rounding (tests/test_smallconv.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SMALL_POSITIONS = 64        # 8x8: measured crossover on a 2-core AVX2 machine (16x16 is a tie)
FEW_CHANNELS = 4            # a transposed conv to <= 4 channels (the image) takes the matrix path at any size
LARGE = 256                 # positions per image from which products are done image by image

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


def _use_matmul(layer: nn.Module, x: torch.Tensor, low_res: int, few: bool = False) -> bool:
    return (x.device.type == "cpu" and x.dim() == 4 and x.dtype == torch.float32
            and (low_res <= SMALL_POSITIONS or few) and layer.groups == 1 and layer.dilation == (1, 1)
            and layer.padding_mode == "zeros" and isinstance(layer.padding, tuple)
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.onnx.is_in_onnx_export() and not torch.compiler.is_compiling()
            and not _is_exporting()
            and x.layout == torch.strided)


class Conv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and isinstance(self.padding, tuple):         # not padding="same"/"valid"
            Ho = (x.shape[2] + 2 * self.padding[0] - self.kernel_size[0]) // self.stride[0] + 1
            Wo = (x.shape[3] + 2 * self.padding[1] - self.kernel_size[1]) // self.stride[1] + 1
            if Ho > 0 and Wo > 0 and _use_matmul(self, x, Ho * Wo):
                return _ConvMM.apply(x, self.weight, self.bias, self.stride, self.padding, (Ho, Wo))
        return super().forward(x)


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is None and x.dim() == 4 and self.output_padding == (0, 0) \
                and _use_matmul(self, x, x.shape[2] * x.shape[3], self.out_channels <= FEW_CHANNELS):
            Ho = (x.shape[2] - 1) * self.stride[0] - 2 * self.padding[0] + self.kernel_size[0]
            Wo = (x.shape[3] - 1) * self.stride[1] - 2 * self.padding[1] + self.kernel_size[1]
            return _ConvTransposeMM.apply(x, self.weight, self.bias, self.stride, self.padding, (Ho, Wo))
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
