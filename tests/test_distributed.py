"""Data-parallel training with torchrun: 2 CPU processes, gloo backend."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from conftest import TINY, write_ab
from img2img import train
from img2img.checkpoint import load_checkpoint


def torchrun(*args, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_two_processes_train_identical_weights_and_resume_in_one(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=8, size=32)
    out = tmp_path / "run"
    r = torchrun(str(Path(__file__).parent / "ddp_worker.py"), str(pairs), str(out), "6")
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == 6
    for net in ("G", "D"):
        for k, v in r0[net].items():
            if "running" in k or "num_batches" in k:
                continue                                    # BatchNorm statistics are per rank
            assert torch.equal(v, r1[net][k]), (net, k)
    assert r.stderr.count("img2img pix2pix:") == 1          # one header: rank 0 alone reports
    rows = (out / "log.jsonl").read_text().splitlines()
    assert len(rows) == 6                                   # ... and logs
    ckpt = load_checkpoint(out)
    assert ckpt["state"]["step"] == 6
    for k, v in r0["G"].items():
        assert torch.equal(ckpt["state"]["G"][k], v)
    # 8 pairs, 2 ranks x batch 1: an epoch is 4 steps; resume in a single process (8 steps/epoch)
    run = train(out=str(out), resume=True, max_steps=10)
    assert load_checkpoint(run)["state"]["step"] == 10


def test_cli_under_torchrun(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=4, size=32)
    r = torchrun("-m", "img2img", "train", "--pairs", str(pairs), "--out", str(tmp_path / "run"),
                 "--load-size", "36", "--crop-size", "32", "--ngf", "8", "--ndf", "8", "--max-steps", "3",
                 "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "model.pt").is_file() and (tmp_path / "run" / "latest.pt").is_file()
    assert "2 steps/epoch" in r.stderr                      # 4 pairs over 2 ranks
