"""The README runs as written: its first-run commands and every Python block, in order, on a fresh copy.

Training is the only thing shortened: ``img2img train`` lines get ``--max-steps 4``
and ``train(...)`` calls ``max_steps=4``.  The copy holds what a fresh clone
has (datasets/shapes, weights/shapes) plus the one file the README tells the
user to download (the MNIST test images, made up here: random digits-sized images).
"""
from __future__ import annotations

import ast
import gzip
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from img2img import families
from img2img.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
STEPS = 4


def section(name: str) -> str:
    m = re.search(rf"<!-- section:{name} -->(.*?)<!-- /section:{name} -->", README, re.S)
    assert m, f"README has no section {name}"
    return m.group(1)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def quickstart_commands() -> list[list[str]]:
    """The img2img lines of the first-run section (serve left out: it runs until stopped)."""
    out = []
    for block in blocks(section("quickstart"), "bash"):
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            if not argv or argv[0] != "img2img" or argv[1] == "serve":
                continue
            if argv[1] == "train":
                argv += ["--max-steps", str(STEPS), "--no-progress"]
            out.append(argv)
    return out


class ShortTraining(ast.NodeTransformer):
    """train(...) -> train(..., max_steps=STEPS, progress=False)."""

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "train":
            node.keywords = [k for k in node.keywords if k.arg not in ("max_steps", "progress")]
            node.keywords += [ast.keyword("max_steps", ast.Constant(STEPS)),
                              ast.keyword("progress", ast.Constant(False))]
        return node


def fake_mnist(path: Path, n: int = 96) -> None:
    images = (np.random.default_rng(0).random((n, 28, 28)) * 255).astype(np.uint8)
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("clone")
    for part in ("datasets/shapes", "weights/shapes"):
        shutil.copytree(ROOT / part, where / part)
    fake_mnist(where / "t10k-images-idx3-ubyte.gz")
    return where


def test_the_readme_has_what_this_test_runs():
    commands = quickstart_commands()
    assert [c[1] for c in commands][:2] == ["train", "eval"]
    assert any(c[1] == "translate" and c[2] == "weights/shapes" for c in commands)
    assert len(blocks(README, "python")) >= 3
    assert "../shared" not in README


def test_first_run_commands_run_as_written(fresh_copy):
    # PYTHONPATH: the subprocesses run in the copy, so without it they would import whatever
    # img2img is installed rather than this checkout's
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    for argv in quickstart_commands():
        done = subprocess.run([sys.executable, "-m", "img2img", *argv[1:]], cwd=fresh_copy, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(argv)}\n{done.stderr[-2000:]}"
    assert (fresh_copy / "runs/demo/model.pt").is_file()
    scores = (fresh_copy / "runs/demo_eval/results.json").read_text()
    assert '"l1"' in scores
    outs = sorted(p.name for p in (fresh_copy / "shapes_out").iterdir())
    assert outs == sorted(p.name for p in (fresh_copy / "datasets/shapes/val").iterdir())
    assert len(list((fresh_copy / "shapes_out_onnx").iterdir())) == len(outs)


def test_python_blocks_run_as_written(fresh_copy, monkeypatch, capsys):
    if not (fresh_copy / "shapes_val/A").is_dir():         # run alone: the first-run section makes it
        test_first_run_commands_run_as_written(fresh_copy)
    monkeypatch.chdir(fresh_copy)
    namespace: dict = {}
    for i, code in enumerate(blocks(README, "python")):
        tree = ast.fix_missing_locations(ShortTraining().visit(ast.parse(code)))
        try:
            exec(compile(tree, f"README python block {i + 1}", "exec"), namespace)
        except Exception as e:                               # name the block in the failure
            pytest.fail(f"README python block {i + 1} failed: {type(e).__name__}: {e}\n{code}")
    assert "held-out L1" in capsys.readouterr().out
    assert (fresh_copy / "digits.png").is_file() and (fresh_copy / "shape_000_out.png").is_file()
    assert (fresh_copy / "runs/demo_api/demo.onnx").is_file()


def test_cli_spellings_work_as_keywords():
    cfg = families.make_config(images="x.gz", model="mlp", size=28)
    assert (cfg.model.kind, cfg.model.image_size) == ("mlp", 28)
    with pytest.raises(ConfigError, match="model= and kind= are the same setting"):
        families.make_config(images="x.gz", model="mlp", kind="dcgan")
    with pytest.raises(ConfigError, match="unknown setting 'modle'"):
        families.make_config(images="x.gz", modle="mlp")
