"""Screenshot of the `img2img serve` page with something drawn and translated (for docs/ and the README).

    python tools/screenshot_serve.py runs/demo --out docs/serve.png
    python tools/screenshot_serve.py runs/dcgan --out docs/serve_dcgan.png

Starts the server on a free 127.0.0.1 port, opens the page in headless Chromium (Debian's
chromium + chromium-driver, driven by Selenium; see tests/browser.py), and then:
a pix2pix model: draws a circle, a box and a triangle with the mouse, presses Translate, waits for the
output; a DCGAN/MLP model: waits for the samples and runs the interpolation. Writes the
PNG and stops the server. Needs ``pip install -e '.[dev]'`` and the two Debian packages.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import browser  # noqa: E402  (tests/browser.py)

from img2img.serve import serve  # noqa: E402


def ring(cx: float, cy: float, r: float, points: int = 12) -> list[tuple[int, int]]:
    """A closed polygon approximating a circle, as canvas offsets from its centre."""
    return [(round(cx + r * math.sin(2 * math.pi * k / points)), round(cy - r * math.cos(2 * math.pi * k / points)))
            for k in range(points + 1)]


def drawing(scale: float) -> list[list[tuple[int, int]]]:
    """The demo strokes: a circle on the left, a box and a triangle on the right (cf. datasets/shapes)."""
    s = scale
    box = [(int(35 * s), int(-60 * s)), (int(90 * s), int(-60 * s)), (int(90 * s), int(-5 * s)),
           (int(35 * s), int(-5 * s)), (int(35 * s), int(-60 * s))]
    triangle = [(int(60 * s), int(20 * s)), (int(100 * s), int(80 * s)), (int(20 * s), int(80 * s)), (int(60 * s), int(20 * s))]
    return [ring(-45 * s, 0, 50 * s, points=16), box, triangle]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="run folder, model.pt or .onnx")
    p.add_argument("--out", default="docs/serve.png", help="the PNG to write (default: docs/serve.png)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=820)
    args = p.parse_args(argv)
    why = browser.missing()
    if why:
        print(f"screenshot_serve: {why}", file=sys.stderr)
        return 2
    from selenium.webdriver.common.by import By
    with serve(args.model, port=0, block=False, quiet=True) as server, \
            browser.chromium(args.width, args.height) as d:
        d.get(server.url)
        if browser.wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#canvas canvas, #samples"), 60)[0] \
                .tag_name == "canvas":
            canvas = d.find_element(By.CSS_SELECTOR, "#canvas canvas")
            browser.settle(1.5)
            # the white drawing area is shown at about the editor's height minus its toolbars
            area = d.execute_script("return arguments[0].getBoundingClientRect().height", canvas)
            browser.draw(d, canvas, drawing(area / 300))
            d.find_element(By.ID, "translate-drawing").click()
            browser.image_size(d, "#output", timeout=120)
        else:
            browser.image_size(d, "#samples", timeout=120)
            d.find_element(By.ID, "interpolate").click()
            browser.image_size(d, "#interpolation", timeout=120)
        browser.settle(1.0)
        out = browser.save_screenshot(d, args.out, full_page=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
