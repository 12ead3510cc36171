"""Build the API reference (HTML) from img2img's docstrings with pdoc, offline.

    python tools/build_docs.py                 # -> docs/api/index.html (not committed: .gitignore)
    python tools/build_docs.py --out /tmp/api

Every module of the package is listed explicitly: ``img2img/__init__.py`` defines ``__all__``
(the public names), and pdoc would otherwise document nothing below the top-level module.
Needs ``pip install pdoc`` (in the ``dev`` extra).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules() -> list[str]:
    """img2img and every module under it, found from the files: ``img2img/gan/`` has no
    ``__init__.py`` (a namespace package), which ``pkgutil.walk_packages`` would skip.
    ``__main__`` is left out (importing it would run the CLI)."""
    sys.path.insert(0, str(ROOT))
    import img2img
    package = Path(img2img.__file__).parent
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__main__" or "__pycache__" in parts:
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "api", help="output folder (default: docs/api)")
    args = p.parse_args(argv)
    import pdoc
    import pdoc.render
    pdoc.render.configure(docformat="restructuredtext", footer_text="img2img API reference")
    names = modules()
    pdoc.pdoc(*names, output_directory=args.out)
    print(f"wrote the API reference of {len(names)} modules to {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
