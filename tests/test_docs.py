"""The pages of docs/ run as written, their links resolve, and the API reference builds.

Convention (also stated in docs/README.md):

* Every page ``docs/*.md`` opens with its ``# title`` and a 3-line summary paragraph.
* Fenced ```` ```bash ```` and ```` ```python ```` blocks are *runnable*: this test runs them, in
  order, in a fresh copy of the repository made for that page (datasets/shapes, weights/shapes,
  tools/, and the MNIST test-image file the pages tell the user to download, made up here).
  Training is the only thing shortened: ``img2img train`` gets ``--max-steps 4 --no-progress``
  (appended, so it wins over the page's own ``--max-steps``) and ``train(...)`` calls
  ``max_steps=4, progress=False`` -- as tests/test_readme.py does for the README.
* Bash blocks run with ``bash -euo pipefail``, ``img2img`` being this checkout's
  ``python -m img2img``; Python blocks of a page share one namespace.
* Blocks that cannot run here (a server that runs until stopped, downloads, several processes,
  a GPU, data the user brings, long measurements) are fenced ```` ```bash no-run ````
  / ```` ```python no-run ````; other fences (```` ```text ````, plain) are output and never run.
* Every page has at least one runnable block, and no runnable block installs anything.
* docs/README.md's runnable block builds the API reference (pdoc); the pages it must hold are checked.

docs/experiments/*.md are measurement notes: their links are checked, their blocks are not run.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_readme import STEPS, ShortTraining, fake_mnist

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```([\w-]*)([^\n]*)\n(.*?)^```", re.S | re.M)
EXPECTED = {"README.md", "training.md", "cyclegan.md", "unconditional.md", "using-models.md", "serve.md",
            "data-tools.md", "reliability.md", "benchmarks.md", "python-api.md", "faq.md", "cut.md"}

# img2img for the bash blocks: this checkout's package, training shortened.
PREAMBLE = f"""
img2img() {{
    if [ "${{1:-}}" = train ]; then "$PY" -m img2img "$@" --max-steps {STEPS} --no-progress
    else "$PY" -m img2img "$@"; fi
}}
"""


def runnable(text: str) -> list[tuple[str, str]]:
    """(language, code) of the blocks this test runs, in page order."""
    return [(lang, code) for lang, rest, code in FENCE.findall(text)
            if lang in ("bash", "python") and "no-run" not in rest]


def env() -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PY": sys.executable,
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}


def fresh_copy(where: Path) -> Path:
    for part in ("datasets/shapes", "weights/shapes", "tools"):
        shutil.copytree(ROOT / part, where / part, ignore=shutil.ignore_patterns("__pycache__", "results"))
    fake_mnist(where / "t10k-images-idx3-ubyte.gz")
    return where


def test_the_pages_exist_and_follow_the_convention():
    assert {p.name for p in PAGES} == EXPECTED
    for page in PAGES:
        text = page.read_text()
        lines = text.splitlines()
        assert lines[0].startswith("# "), f"{page.name}: starts with its # title"
        summary = text.split("\n\n")[1].strip().splitlines()
        assert len(summary) == 3 and not summary[0].startswith(("#", "```", "|", "-")), \
            f"{page.name}: a 3-line summary paragraph follows the title"
        blocks = runnable(text)
        assert blocks, f"{page.name}: no runnable example"
        for _, code in blocks:
            assert "pip install" not in code, f"{page.name}: a runnable block installs something"
        assert "../shared" not in text, f"{page.name} sends the user to ../shared"


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_every_relative_link_and_image_resolves():
    files = [ROOT / "README.md", ROOT / "datasets/README.md", ROOT / "weights/README.md", *sorted(DOCS.rglob("*.md"))]
    files = [f for f in files if "api" not in f.relative_to(ROOT).parts]
    bad = []
    for md in files:
        if "../shared" in md.read_text():                    # private to developers
            bad.append(f"{md.relative_to(ROOT)}: mentions ../shared")
        text = FENCE.sub("", md.read_text())
        text = re.sub(r"`[^`\n]*`", "", text)                       # inline code is not a link
        for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue                                             # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            dest = (md.parent / path).resolve() if path else md
            if not dest.exists():
                bad.append(f"{md.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{md.relative_to(ROOT)}: {target} (no such heading)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_page_examples_run_as_written(page, tmp_path, monkeypatch):
    text = (DOCS / page).read_text()
    where = fresh_copy(tmp_path)
    monkeypatch.chdir(where)
    namespace: dict = {}
    for i, (lang, code) in enumerate(runnable(text), 1):
        if lang == "bash":
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", PREAMBLE + code], cwd=where, env=env(),
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{page} block {i} (bash) failed:\n{code}\n{done.stderr[-3000:]}"
        else:
            tree = ast.fix_missing_locations(ShortTraining().visit(ast.parse(code)))
            try:
                exec(compile(tree, f"{page} block {i}", "exec"), namespace)
            except Exception as e:
                pytest.fail(f"{page} block {i} (python) failed: {type(e).__name__}: {e}\n{code}")
    if page == "README.md":                                  # the index builds the API reference
        check_api_pages(where)


def test_the_api_reference_builds():
    """docs/README.md's build command (run by the test above, in its copy) is the README's too."""
    assert "python tools/build_docs.py" in (ROOT / "README.md").read_text()
    assert "/docs/api/" in (ROOT / ".gitignore").read_text().split()
    assert any("python tools/build_docs.py" in code for _, code in runnable((DOCS / "README.md").read_text()))


def check_api_pages(where: Path) -> None:
    api = where / "docs/api"
    for name in ("index.html", "img2img.html", "img2img/translate.html", "img2img/config.html",
                 "img2img/gan/trainer.html", "img2img/export.html", "img2img/serve.html"):
        assert (api / name).is_file(), f"the API reference has no {name}"
    assert "Translator" in (api / "img2img/translate.html").read_text()
