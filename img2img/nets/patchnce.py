"""PatchNCE (Park, Efros, Zhang and Zhu, "Contrastive Learning for Unpaired Image-to-Image
Translation", ECCV 2020): the loss that ties each patch of a translated image to the patch of the
input at the same place.

:class:`PatchHead` is the small network H of the paper: for each encoder layer a two-layer MLP
(Linear, ReLU, Linear to 256 units) applied to the features at sampled places, followed by L2
normalisation.  :func:`patch_nce` is the loss: with ``q`` the output's patch embeddings and ``k``
the input's (the same P places of one image), it is the cross-entropy of picking, for each query
q_i among all keys k_1..k_P of the same image, the one at its own place (the "positive"); the other
places are the negatives, similarities are dot products divided by a temperature (0.07).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchHead(nn.Module):
    """One MLP per encoder layer: features (N, C_l, H_l, W_l) at P sampled places -> (N, P, dim), unit length."""

    def __init__(self, channels: list[int], dim: int = 256):
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, dim), nn.ReLU(True), nn.Linear(dim, dim))
                                  for c in channels)

    def forward(self, feats: list[torch.Tensor], places: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for mlp, f, idx in zip(self.mlps, feats, places):
            flat = f.flatten(2).transpose(1, 2)                 # (N, H*W, C)
            out.append(F.normalize(mlp(flat[:, idx]), dim=-1))
        return out


def sample_places(feats: list[torch.Tensor], n: int) -> list[torch.Tensor]:
    """For each feature map, ``n`` distinct places (flat indices into H*W; all of them, in random order,
    where the map has fewer), drawn with torch's global generator (part of a checkpoint's RNG state)."""
    return [torch.randperm(f.shape[2] * f.shape[3])[:n].to(f.device) for f in feats]


def patch_nce(q: torch.Tensor, k: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
    """The PatchNCE loss of queries ``q`` against keys ``k``, both (N, P, D) and unit length; ``k`` is
    not differentiated (the keys are the input's, the target to match).  Mean over the N*P queries."""
    q, k = q.float(), k.detach().float()
    logits = torch.bmm(q, k.transpose(1, 2)) / tau              # (N, P, P): row i, the positive at column i
    target = torch.arange(q.shape[1], device=q.device).repeat(q.shape[0])
    return F.cross_entropy(logits.flatten(0, 1), target)
