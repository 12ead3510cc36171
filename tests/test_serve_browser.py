"""The serve page in a real browser: headless Chromium (Debian's chromium + chromium-driver) via Selenium.

Draws on the canvas with the mouse, presses Translate and waits for the output image;
uploads a file that is not an image, and one over the size limit, and waits for the
messages; opens the DCGAN page.
Skipped, with the reason, where Gradio, Selenium, chromium or chromedriver is missing.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

import browser
from img2img.serve import serve
from tiny_models import make_checkpoint

_why = browser.missing() or (None if importlib.util.find_spec("gradio") else
                             "Gradio is not installed (pip install -e '.[serve]')")
pytestmark = pytest.mark.skipif(_why is not None, reason=f"no browser test: {_why}")

BOX = [[(-60, -60), (60, -60), (60, 60), (-60, 60), (-60, -60)]]        # one closed stroke, 4 moves


def test_draw_translate_and_bad_upload_in_the_browser(tmp_path):
    from selenium.webdriver.common.by import By
    ckpt = make_checkpoint(tmp_path / "tiny.pt")                         # 32 px model: a 256 x 256 canvas
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image " * 50)
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > 2**20
    with serve(ckpt, port=0, device="cpu", max_upload_mb=1, block=False, quiet=True) as server, \
            browser.chromium() as d:
        canvas = browser.open_page(d, server.url, "#canvas canvas")
        browser.wait(d, lambda d: d.execute_script("return arguments[0].width > 0", canvas), 30, "the canvas")
        browser.settle(1.0)                                              # the editor sets up its layers
        browser.draw(d, canvas, BOX)
        d.find_element(By.ID, "translate-drawing").click()
        w, h, src = browser.image_size(d, "#output", timeout=90)
        assert (w, h) == (256, 256)
        status = browser.text_appears(d, "256x256 out")
        assert "drawing: 256x256 in, 256x256 out" in status

        d.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Upload']").click()
        file_input = browser.wait(d, lambda d: (d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]")
                                                or [None])[0], 30, "the upload box")
        file_input.send_keys(str(junk))                                  # translated on upload
        text = browser.text_appears(d, "junk.png: not an image file this server can decode", timeout=60)
        assert "Traceback" not in text
        file_input = d.find_element(By.CSS_SELECTOR, "#upload input[type=file]")
        file_input.send_keys(str(big))                                   # refused before it is sent
        text = browser.text_appears(d, "exceed the maximum allowed size of 1.0 Mb", timeout=60)
        assert "big.png" in text and "Traceback" not in text

        d.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Draw']").click()
        d.find_element(By.ID, "translate-drawing").click()              # the page still works
        browser.text_appears(d, "drawing: 256x256 in", timeout=60)


def test_dcgan_page_shows_samples_and_an_interpolation(tmp_path):
    from selenium.webdriver.common.by import By
    ckpt = make_checkpoint(tmp_path / "dcgan.pt", kind="dcgan", image_size=32)
    with serve(ckpt, port=0, device="cpu", block=False, quiet=True) as server, browser.chromium() as d:
        browser.open_page(d, server.url, "#samples")
        w, h, _ = browser.image_size(d, "#samples", timeout=90)         # drawn when the page loads: 16 of seed 0
        assert (w, h) == (552, 552)                                      # 4 x (32 + 2) + 2 = 138 -> x4
        d.find_element(By.ID, "interpolate").click()
        w, h, _ = browser.image_size(d, "#interpolation", timeout=60)   # 8 steps in a row: 8*34+2 = 274 -> x2
        assert (w, h) == (548, 72)
        assert "8 steps from seed 1 to seed 2" in browser.text_appears(d, "8 steps from seed 1")
