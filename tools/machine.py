"""What every benchmark names: the CPU, torch's kernel capability, threads; and the kernel sets to compare.

``KERNELS["avx2"]`` runs an AVX2-only machine's kernels on a newer CPU: torch's own
(``ATEN_CPU_CAPABILITY``) and oneDNN's (``ONEDNN_MAX_CPU_ISA``).
"""
from __future__ import annotations

import os
import platform
import subprocess

KERNELS = {"default": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def cpu_model() -> str:
    """The CPU as ``lscpu`` names it (``platform.processor()`` where lscpu is missing)."""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe() -> str:
    """One line: CPU model, torch version and kernel capability, threads, cores."""
    import torch
    return (f"{cpu_model()}, torch {torch.__version__} capability {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads, {os.cpu_count()} CPU cores")
