"""Run under torchrun by test_distributed.py: train a few steps, then every rank saves its weights."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TINY  # noqa: E402
from img2img.families import make_config  # noqa: E402
from img2img.gan.trainer import Trainer  # noqa: E402

pairs, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
trainer = Trainer(make_config(pairs=pairs, out=out, max_steps=steps, device="cpu", seed=3, **TINY))
trainer.fit()
torch.save({"G": trainer.G.state_dict(), "D": trainer.D.state_dict(), "step": trainer.step,
            "world": trainer.world}, Path(out) / f"rank{trainer.rank}.pt")
