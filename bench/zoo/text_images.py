"""Text rendered into images, so an OCR model's truth is known by construction.

Lines of words are drawn with the DejaVu fonts that ship inside matplotlib, at several sizes,
then blurred a little and given sensor-like noise. Calibration and evaluation use different
seeds, so no evaluation line was seen while calibrating.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Oblique.ttf")
WORDS = ("model compression benchmark quantize prune tensor layer weight recognition detector calibration latency "
         "server edge device accuracy export runtime kernel integer float batch answer sample token image text line "
         "invoice total amount date number street city price order account payment receipt customer").split()


def font_path(name: str) -> Path:
    return Path(str(resources.files("matplotlib") / "mpl-data" / "fonts" / "ttf" / name))


def random_line(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(2, 4))
    if rng.random() < 0.4:
        words.insert(rng.randint(0, len(words)), str(rng.randint(1, 9999)))
    return " ".join(words)


def render_line(text: str, rng: random.Random, height: int = 48) -> Image.Image:
    """One line on a light background, cropped to the text with a small margin, ``height`` pixels high."""
    font = ImageFont.truetype(str(font_path(rng.choice(FONTS))), rng.randint(28, 40))
    left, top, right, bottom = font.getbbox(text)
    margin = rng.randint(4, 12)
    paper = tuple(rng.randint(215, 255) for _ in range(3))
    ink = tuple(rng.randint(0, 60) for _ in range(3))
    image = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), paper)
    ImageDraw.Draw(image).text((margin - left, margin - top), text, fill=ink, font=font)
    image = image.resize((max(1, round(image.width * height / image.height)), height), Image.BILINEAR)
    return _degrade(image, rng)


def render_page(lines: list[str], rng: random.Random, size: tuple[int, int]) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Lines drawn one under another at random offsets; returns the page and each line's box (x0, y0, x1, y1)."""
    page = Image.new("RGB", size, tuple(rng.randint(215, 255) for _ in range(3)))
    draw, boxes, y = ImageDraw.Draw(page), [], rng.randint(8, 24)
    for text in lines:
        font = ImageFont.truetype(str(font_path(rng.choice(FONTS))), rng.randint(16, 28))
        left, top, right, bottom = font.getbbox(text)
        if right - left > size[0] - 16:
            continue  # too wide for the page: the next line may fit
        if y + bottom - top > size[1] - 8:
            break
        x = rng.randint(8, size[0] - (right - left) - 8)
        draw.text((x - left, y - top), text, fill=tuple(rng.randint(0, 60) for _ in range(3)), font=font)
        boxes.append((x, y, x + right - left, y + bottom - top))
        y += bottom - top + rng.randint(8, 30)
    return _degrade(page, rng), boxes


def _degrade(image: Image.Image, rng: random.Random) -> Image.Image:
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))
    noisy = np.asarray(image, np.float32) + np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 6), (image.height, image.width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
