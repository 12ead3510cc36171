"""Where the networks run: device names, mixed precision, and data-loading processes."""
from __future__ import annotations

import os

import torch

from .config import AMP_MODES, ConfigError, check_device_name


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N`` -> a torch.device."""
    if isinstance(name, torch.device):
        return name
    check_device_name(name)                    # meta, mps, xpu, ... are torch devices img2img does not run on
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    dev = torch.device(name)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                          f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return dev


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --amp (None: full float32).  auto: bf16 on GPUs that have it,
    else fp16 (with loss scaling) on CUDA; float32 on the CPU, where autocast does not pay here."""
    if setting not in AMP_MODES:
        raise ConfigError(f"--amp must be one of {', '.join(AMP_MODES)}, got {setting!r}")
    if setting == "off" or (setting == "auto" and device.type != "cuda"):
        return None
    if setting == "bf16" or (setting == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    if device.type != "cuda":
        raise ConfigError("--amp fp16 needs a CUDA device (use bf16 or off on the CPU)")
    return torch.float16


def default_workers(device: torch.device) -> int:
    """Decoding processes for translate/eval when none are asked for.  On the CPU the network
    already uses every core, so on small machines (<= 4 cores) workers only steal from it
    (measured on 2 cores: 0.130 s/image with 0 workers, 0.155 with 2); bigger machines and
    GPUs get 2."""
    return 2 if device.type != "cpu" or (os.cpu_count() or 1) > 4 else 0
