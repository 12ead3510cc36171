"""A writer killed mid-write leaves a temporary behind; the next write of the same file removes it.

Every writer writes to ``.NAME.XXXXXXXX.tmp`` beside its target (or a scratch folder) and renames
at the end (:func:`img2img.files.atomic_path`, :func:`img2img.files.private_folder`).  Here each one
is SIGKILLed just before the rename of its output -- the worst moment: the temporary is complete
and large -- in a real subprocess, then run again normally: the output is there and no temporary
is left, beside it or in the temporary folder (export --quantize's scratch models).
A live writer's temporary is never touched (its lock is held).
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import write_ab
from img2img import files
from tiny_models import make_checkpoint, write_images

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and locks")

# Runs `img2img ARGS` (or the code in KILL_CODE) with os.replace wrapped: the rename onto a file
# named KILL_TARGET SIGKILLs the process instead.
KILLER = """
import os, signal, sys
real_replace = os.replace
def replace(src, dst, *a, **k):
    if os.path.basename(os.fspath(dst)) == os.environ["KILL_TARGET"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *a, **k)
os.replace = replace
if os.environ.get("KILL_CODE"):
    exec(os.environ["KILL_CODE"])
else:
    from img2img.cli import main
    sys.exit(main(sys.argv[1:]))
"""
DEADLINE = 300          # a guard against a hung subprocess only


def run(args: list[str], tmp: Path, kill_target: str | None = None, code: str | None = None) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp / "systmp"), "KILL_TARGET": kill_target or "",
           "KILL_CODE": code or ""}
    (tmp / "systmp").mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", KILLER, *map(str, args)], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=DEADLINE)
    if kill_target:
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    else:
        assert done.returncode == 0, done.stderr[-2000:]


def leftovers(*folders: Path) -> list[Path]:
    return sorted(p for f in folders for p in f.rglob("*") if p.name.endswith(".tmp") or "img2img-" in p.name
                  or ".extract-" in p.name)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "model.pt")


def test_export_killed_before_the_rename_leaves_nothing_after_the_next_export(tmp_path, model):
    out = tmp_path / "out"
    run(["export", model, out / "x.onnx", "--exporter", "torchscript"], tmp_path, kill_target="x.onnx")
    assert leftovers(out), "the kill should leave the complete temporary beside x.onnx"
    assert not (out / "x.onnx").exists()
    run(["export", model, out / "x.onnx", "--exporter", "torchscript"], tmp_path)
    assert (out / "x.onnx").stat().st_size > 0
    assert leftovers(out) == []


def test_int8_export_killed_leaves_no_scratch_models_after_the_next_one(tmp_path, model):
    out, scratch = tmp_path / "out", tmp_path / "systmp"
    write_images(tmp_path / "calib", [(32, 32)] * 4)
    args = ["export", model, out / "q.onnx", "--exporter", "torchscript", "--quantize", "int8",
            "--calibration", tmp_path / "calib", "--min-psnr", "0"]
    run(args, tmp_path, kill_target="q.onnx")
    assert leftovers(out) and leftovers(scratch), "the kill should leave q.onnx's temporary and the scratch models"
    run(args, tmp_path)
    assert (out / "q.onnx").is_file()
    assert leftovers(out, scratch) == []


def test_translate_killed_mid_folder_then_rerun_leaves_no_temporary(tmp_path, model):
    write_images(tmp_path / "in", [(32, 32)] * 3, exts=("png",))
    out = tmp_path / "translated"
    run(["translate", model, tmp_path / "in", out, "--no-progress"], tmp_path, kill_target="img1.png")
    assert leftovers(out)
    run(["translate", model, tmp_path / "in", out, "--no-progress", "--overwrite"], tmp_path)
    assert sorted(p.name for p in out.rglob("*.png")) == ["img0.png", "img1.png", "img2.png"]
    assert leftovers(out) == []


def test_data_tool_killed_then_rerun_leaves_no_temporary(tmp_path):
    pairs = write_ab(tmp_path / "pairs", n=3)
    out = tmp_path / "split"
    first = sorted(p.name for p in pairs.iterdir())[1]
    run(["data", "split-ab", pairs, out, "--no-progress", "--workers", "1"], tmp_path, kill_target=first)
    assert leftovers(out)
    run(["data", "split-ab", pairs, out, "--no-progress", "--overwrite", "--workers", "1"], tmp_path)
    assert len(list((out / "A").iterdir())) == 3 and leftovers(out) == []


def test_extraction_killed_leaves_no_scratch_folder_after_the_next_one(tmp_path):
    archive = tmp_path / "set.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("set/a.txt", "set/b.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    dest = tmp_path / "data"
    code = ("from img2img.datatools.downloads import safe_extract\n"
            f"safe_extract({str(archive)!r}, {str(dest)!r}, progress=False)\n")
    run([], tmp_path, kill_target="set", code=code)
    assert leftovers(dest), "the kill should leave the extraction's scratch folder"
    run([], tmp_path, code=code)
    assert sorted(p.name for p in (dest / "set").iterdir()) == ["a.txt", "b.txt"]
    assert leftovers(dest) == []


def test_a_live_writers_temporary_is_not_touched_and_other_targets_are_left_alone(tmp_path):
    target = tmp_path / "x.onnx"
    with files.atomic_path(target) as live:                 # this process is writing it
        live.write_bytes(b"half")
        other = tmp_path / ".y.onnx.abcd1234.tmp"           # another target's leftover
        other.write_bytes(b"y")
        foreign = tmp_path / ".x.onnx.notours.tmp"          # not atomic_path's pattern
        foreign.write_bytes(b"z")
        with files.atomic_path(target) as second:           # a second writer of the same file
            second.write_bytes(b"whole")
            assert live.exists(), "a live writer's temporary was removed"
        assert target.read_bytes() == b"whole"
        assert other.exists() and foreign.exists()
    assert target.read_bytes() == b"half"                   # the first writer finishes last
    assert files.remove_stale_temporaries(tmp_path, "y.onnx") == [other]
