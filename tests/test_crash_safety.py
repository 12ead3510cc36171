"""Training survives kills, Ctrl-C and non-finite losses (real subprocesses, real signals).

* SIGKILL at random moments, and in the middle of a checkpoint write, leaves a run folder
  that loads; ``--resume`` then finishes the run with exactly the state of a run that was
  never interrupted (CPU, --workers 0: weights, optimizer state, meters, RNG, log).
* SIGINT stops after the current step, writes a checkpoint and exits 0.
* A non-finite loss stops the run with a message naming the step; the last good
  checkpoint is kept.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import write_ab
from img2img import train
from img2img.checkpoint import load_checkpoint
from img2img.cli import main
from img2img.report import read_log

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SETTINGS = dict(load_size=36, crop_size=32, ngf=8, ndf=8, epochs=6, epochs_decay=2, seed=3, save_every=1)
DEADLINE = 180          # seconds; only a guard against a hung subprocess, never a measured result

# Runs the CLI with torch.save wrapped: save number KILL_AT_SAVE writes its file, cuts it to
# half (a torn write) and SIGKILLs the process before the rename -- a kill mid-checkpoint.
KILL_DURING_SAVE = """
import os, signal, sys, torch
real_save, calls = torch.save, [0]
def save(obj, f, *args, **kwargs):
    real_save(obj, f, *args, **kwargs)
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT_SAVE"]):
        name = f if isinstance(f, (str, os.PathLike)) else f.name     # a path, or the open file torch.save got
        if hasattr(f, "flush"):
            f.flush()
        with open(name, "r+b") as fh:
            fh.truncate(os.path.getsize(name) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
torch.save = save
from img2img.cli import main
sys.exit(main(sys.argv[1:]))
"""


def flags(settings: dict) -> list[str]:
    out = []
    for k, v in settings.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def start(args: list[str], cwd: Path, new_session: bool = False, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env}, start_new_session=new_session)


def logged_steps(run: Path) -> list[int]:
    try:
        return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):        # not there yet, or being rewritten
        return []


def wait_for_step(p: subprocess.Popen, run: Path, step: int) -> bool:
    """Wait until the log shows a step > ``step``; False if the process ended first."""
    end = time.monotonic() + DEADLINE
    while max(logged_steps(run), default=0) <= step:
        if p.poll() is not None:
            return False
        assert time.monotonic() < end, "the training subprocess made no progress"
        time.sleep(0.005)
    return True


def checkpoint_step(run: Path) -> int:
    """The step of run/latest.pt, after checking that everything a resume reads loads."""
    ckpt = load_checkpoint(run / "latest.pt")
    json.loads((run / "config.json").read_text())
    if (run / "model.pt").exists():
        load_checkpoint(run / "model.pt")
    return int(ckpt["state"]["step"])


def same(x, y) -> bool:
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(same(a, b) for a, b in zip(x, y))
    return x == y


def test_sigkill_at_any_moment_then_resume_equals_an_uninterrupted_run(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=4)
    full = train(pairs=str(pairs), out=str(tmp_path / "full"), progress=False, **SETTINGS)
    run = tmp_path / "run"
    first = ["-c", KILL_DURING_SAVE, "train", "--pairs", str(pairs), "--out", str(run), "--no-progress",
             *flags(SETTINGS)]

    # 1. killed while writing the checkpoint of step 3 (after a torn write, before the rename)
    p = start(first, tmp_path, KILL_AT_SAVE="3")
    _, err = p.communicate(timeout=DEADLINE)
    assert p.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert list(run.glob(".latest.pt.*.tmp")), "the kill should have left the torn temporary file"
    step = checkpoint_step(run)
    assert step == 2                                   # the previous checkpoint, intact

    # 2. SIGKILL at random moments while it runs, resumed each time
    seed = random.randrange(10 ** 6)
    rng = random.Random(seed)
    kills = 0
    for _ in range(3):
        stale = max(logged_steps(run), default=0)      # a killed run may have logged past its checkpoint
        p = start(["-m", "img2img", "train", "--resume", str(run), "--no-progress"], tmp_path)
        if wait_for_step(p, run, max(step, stale)):
            time.sleep(rng.uniform(0.0, 0.4))
            p.kill()
        _, err = p.communicate(timeout=DEADLINE)
        assert p.returncode in (-signal.SIGKILL, 0), err.decode()[-2000:]
        kills += p.returncode == -signal.SIGKILL
        before, step = step, checkpoint_step(run)
        assert step >= before, f"a checkpoint went backwards (random seed {seed})"
        if p.returncode == 0:
            break
    assert kills >= 1, f"no random kill landed (random seed {seed})"

    # 3. finish it and compare with the run that was never interrupted
    resumed = train(out=str(run), resume=True, progress=False)
    assert not list(run.glob(".*.tmp")), "temporary files of killed writes are cleaned up on resume"
    a, b = load_checkpoint(full / "latest.pt")["state"], load_checkpoint(resumed / "latest.pt")["state"]
    assert a["step"] == b["step"] == 32
    for key in ("G", "D", "opt_g", "opt_d", "meters", "rng"):
        assert same(a[key], b[key]), f"{key} differs after kills and resumes (random seed {seed})"
    assert same(load_checkpoint(full / "model.pt")["state"], load_checkpoint(resumed / "model.pt")["state"])
    la, lb = read_log(full / "log.jsonl"), read_log(resumed / "log.jsonl")
    assert [r["step"] for r in lb] == list(range(1, 33))
    assert [(r["D"], r["G_L1"], r["lr"]) for r in la] == [(r["D"], r["G_L1"], r["lr"]) for r in lb]


def test_ctrl_c_stops_cleanly_after_writing_a_checkpoint(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=8)
    run = tmp_path / "run"
    p = start(["-m", "img2img", "train", "--pairs", str(pairs), "--out", str(run), "--no-progress",
               "--workers", "1", *flags({**SETTINGS, "epochs": 50, "save_every": 0})], tmp_path, new_session=True)
    assert wait_for_step(p, run, 2), p.communicate()[1].decode()[-2000:]
    os.killpg(p.pid, signal.SIGINT)            # as a terminal's Ctrl-C: the whole group, data workers included
    _, err = p.communicate(timeout=DEADLINE)
    err = err.decode()
    assert p.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "interrupted (Ctrl-C); checkpoint written" in err, err[-2000:]
    step = checkpoint_step(run)
    assert 2 < step < 400 and step == max(logged_steps(run))      # stopped where it was, nothing lost
    assert load_checkpoint(run / "model.pt")["state"]["step"] == step


@pytest.mark.parametrize("cause", ["nan at step 5", "absurd learning rate"])
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(cause, tmp_path, capsys, monkeypatch):
    from img2img.families.pix2pix import Pix2Pix
    pairs = write_ab(tmp_path / "pairs", n=2)
    run = tmp_path / "run"
    argv = ["train", "--pairs", str(pairs), "--out", str(run), "--no-progress", "--max-steps", "10",
            *flags({k: v for k, v in SETTINGS.items() if k != "save_every"})]
    if cause == "nan at step 5":
        real, calls = Pix2Pix.g_terms, []

        def g_terms(self, batch, fake):
            calls.append(1)
            adversarial, extra = real(self, batch, fake)
            return adversarial, ({k: v * float("nan") for k, v in extra.items()} if len(calls) == 5 else extra)

        monkeypatch.setattr(Pix2Pix, "g_terms", g_terms)
        argv += ["--save-every", "2"]
    else:
        argv += ["--save-every", "1", "--lr", "1e30"]
    rc = main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "Traceback" not in "\n".join(lines)
    [error] = [ln for ln in lines if "error" in ln]
    assert "not finite" in error and error == lines[-1], lines
    bad_step = int(error.split("step ")[1].split(":")[0])
    if cause == "nan at step 5":
        assert bad_step == 5 and str(run / "latest.pt") in error and "is kept" in error
        state = load_checkpoint(run / "latest.pt")["state"]
        assert state["step"] == 4
        assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
        monkeypatch.undo()                            # and the run goes on from the good checkpoint
        assert main(["train", "--resume", str(run), "--max-steps", "6", "--no-progress"]) == 0
        assert load_checkpoint(run / "latest.pt")["state"]["step"] == 6
    elif (run / "latest.pt").exists():
        assert load_checkpoint(run / "latest.pt")["state"]["step"] == bad_step - 1 and "is kept" in error
    else:
        assert bad_step == 1 and "no checkpoint was written yet" in error
