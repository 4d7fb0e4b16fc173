"""Rendered structure-rich images (text, line art, hatching, façades, screentone) for validation.

Why: the shipped nets trail their peers most on line-art pages and city photos (issue 28), and every
real image here either trained them or is a test set (Set5/Set14/B100, never used for choices). Pages
drawn by a seeded program are unseen by construction and as structured as content gets: thin strokes,
glyphs, regular patterns and flat fills, the cases where a net trained on smooth JPEG photos goes soft.

Each image is drawn at ``SUPERSAMPLE`` times its size and reduced with Pillow's antialiasing Lanczos
filter, as a rasteriser or a scanner would: edges are sharp but not aliased (a jagged, aliased HR would
reward nets for inventing aliasing). The result depends only on ``(kind, seed, size)`` and Pillow's
built-in font, so the set is the same on every machine with the same Pillow major version.
"""

from __future__ import annotations

import math
import random
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SUPERSAMPLE = 4
KINDS = ("text", "lineart", "hatching", "facade", "screentone", "diagram")
INKS = ((20, 20, 20), (30, 30, 90), (120, 20, 20), (10, 70, 30))
PAPERS = ((250, 250, 246), (255, 255, 255), (236, 232, 220), (225, 235, 245))


def _text(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int) -> None:
    """Lines of pseudo-words in several sizes, like a page of print or a screenshot."""
    y = rng.randint(2, 6) * SUPERSAMPLE
    while y < h:
        size = rng.choice((9, 11, 13, 16, 22, 30)) * SUPERSAMPLE
        font = ImageFont.load_default(size=size)
        words = ("".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(1, 9)))
                 for _ in range(60))
        draw.text((rng.randint(2, 12) * SUPERSAMPLE, y), " ".join(words), font=font, fill=rng.choice(INKS))
        y += int(size * rng.uniform(1.15, 1.6))


def _lineart(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int) -> None:
    """Inked outlines of flat-filled shapes and free strokes, like a comic panel."""
    for _ in range(rng.randint(14, 24)):
        x0, y0 = rng.uniform(-0.1, 1) * w, rng.uniform(-0.1, 1) * h
        x1, y1 = x0 + rng.uniform(0.05, 0.5) * w, y0 + rng.uniform(0.05, 0.5) * h
        fill = tuple(rng.randint(90, 255) for _ in range(3)) if rng.random() < 0.6 else None
        width = rng.choice((1, 2, 3, 5)) * SUPERSAMPLE // 2
        shape = rng.choice(("ellipse", "rectangle", "polygon"))
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=fill, outline=(0, 0, 0), width=width)
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=fill, outline=(0, 0, 0), width=width)
        else:
            points = [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(rng.randint(3, 6))]
            draw.polygon(points, fill=fill, outline=(0, 0, 0), width=width)
    for _ in range(rng.randint(10, 20)):  # free strokes: smooth curves of short segments
        x, y, angle = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 2 * math.pi)
        points = []
        for _ in range(40):
            points.append((x, y))
            angle += rng.uniform(-0.25, 0.25)
            x, y = x + math.cos(angle) * 6 * SUPERSAMPLE, y + math.sin(angle) * 6 * SUPERSAMPLE
        draw.line(points, fill=(0, 0, 0), width=rng.choice((1, 2, 3)) * SUPERSAMPLE // 2, joint="curve")


def _hatching(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int) -> None:
    """Regions of parallel and crossed lines at several pitches and angles, like engraving or manga shading."""
    for _ in range(rng.randint(5, 9)):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.15, 0.4) * min(w, h)
        pitch = rng.uniform(2.5, 8) * SUPERSAMPLE
        ink = rng.choice(INKS)
        for angle in rng.sample((0.0, 0.5, 1.0, 1.6, 2.3), rng.randint(1, 2)):
            dx, dy = math.cos(angle), math.sin(angle)
            for k in np.arange(-r, r, pitch):
                half = math.sqrt(max(r * r - k * k, 0.0))
                px, py = cx - dy * k, cy + dx * k
                draw.line((px - dx * half, py - dy * half, px + dx * half, py + dy * half), fill=ink,
                          width=max(1, int(pitch * rng.uniform(0.15, 0.4))))


def _facade(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int) -> None:
    """Buildings: walls with regular grids of windows and frames, bricks on some, like a city photo's structure."""
    x = 0.0
    while x < w:
        bw = rng.uniform(0.25, 0.6) * w
        top = rng.uniform(0.0, 0.3) * h
        wall = tuple(rng.randint(120, 230) for _ in range(3))
        draw.rectangle((x, top, x + bw, h), fill=wall, outline=(40, 40, 40), width=SUPERSAMPLE)
        if rng.random() < 0.4:  # brick courses
            course = rng.uniform(3, 6) * SUPERSAMPLE
            for row, yy in enumerate(np.arange(top, h, course)):
                draw.line((x, yy, x + bw, yy), fill=(90, 70, 60), width=SUPERSAMPLE // 2)
                offset = (row % 2) * course
                for xx in np.arange(x + offset, x + bw, 2 * course):
                    draw.line((xx, yy, xx, yy + course), fill=(90, 70, 60), width=SUPERSAMPLE // 2)
        cols, rows = rng.randint(3, 8), rng.randint(4, 12)
        cell_w, cell_h = bw / cols, (h - top) / rows
        glass = tuple(rng.randint(20, 110) for _ in range(3))
        for i in range(cols):
            for j in range(rows):
                x0, y0 = x + i * cell_w + 0.2 * cell_w, top + j * cell_h + 0.2 * cell_h
                x1, y1 = x0 + 0.6 * cell_w, y0 + 0.6 * cell_h
                draw.rectangle((x0, y0, x1, y1), fill=glass, outline=(245, 245, 245), width=SUPERSAMPLE)
                draw.line(((x0 + x1) / 2, y0, (x0 + x1) / 2, y1), fill=(245, 245, 245), width=SUPERSAMPLE // 2)
        x += bw


def _screentone(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int) -> None:
    """Halftone dot fields of varying pitch and dot size inside inked panels, like printed manga."""
    panels = [(0.0, 0.0, w / 2, h / 2), (w / 2, 0.0, w, h / 2), (0.0, h / 2, w / 2, h), (w / 2, h / 2, w, h)]
    for x0, y0, x1, y1 in panels:
        pitch = rng.uniform(3, 9) * SUPERSAMPLE
        gradient = rng.random() < 0.5
        for yy in np.arange(y0 + pitch / 2, y1, pitch):
            for xx in np.arange(x0 + pitch / 2 + (pitch / 2 if int((yy - y0) / pitch) % 2 else 0), x1, pitch):
                share = (xx - x0) / (x1 - x0) if gradient else 0.5
                r = pitch * (0.1 + 0.35 * share)
                draw.ellipse((xx - r, yy - r, xx + r, yy + r), fill=(0, 0, 0))
        draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0), width=3 * SUPERSAMPLE)


def _diagram(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int) -> None:
    """Boxes, arrows, labels and a plot grid, like a slide or a user-interface screenshot."""
    font = ImageFont.load_default(size=12 * SUPERSAMPLE)
    step = rng.uniform(12, 24) * SUPERSAMPLE
    for xx in np.arange(0, w, step):
        draw.line((xx, 0, xx, h), fill=(200, 200, 210), width=SUPERSAMPLE // 2)
    for yy in np.arange(0, h, step):
        draw.line((0, yy, w, yy), fill=(200, 200, 210), width=SUPERSAMPLE // 2)
    centres = []
    for _ in range(rng.randint(5, 9)):
        x0, y0 = rng.uniform(0, 0.8) * w, rng.uniform(0, 0.85) * h
        x1, y1 = x0 + rng.uniform(0.12, 0.25) * w, y0 + rng.uniform(0.06, 0.12) * h
        draw.rounded_rectangle((x0, y0, x1, y1), radius=3 * SUPERSAMPLE, fill=rng.choice(PAPERS),
                               outline=rng.choice(INKS), width=SUPERSAMPLE)
        label = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 7)))
        draw.text((x0 + 3 * SUPERSAMPLE, y0 + 2 * SUPERSAMPLE), label, font=font, fill=rng.choice(INKS))
        centres.append(((x0 + x1) / 2, (y0 + y1) / 2))
    for (ax, ay), (bx, by) in zip(centres, centres[1:], strict=False):
        draw.line((ax, ay, bx, by), fill=(0, 0, 0), width=SUPERSAMPLE)
        angle = math.atan2(by - ay, bx - ax)
        head = [(bx, by)] + [(bx - 8 * SUPERSAMPLE * math.cos(angle + s), by - 8 * SUPERSAMPLE * math.sin(angle + s))
                             for s in (0.4, -0.4)]
        draw.polygon(head, fill=(0, 0, 0))
    xs = np.linspace(0.05 * w, 0.95 * w, 200)
    phase, freq = rng.uniform(0, 6), rng.uniform(2, 6)
    ys = h * (0.5 + 0.3 * np.sin(freq * xs / w * 2 * math.pi + phase))
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(200, 30, 30), width=SUPERSAMPLE, joint="curve")


_DRAW = {"text": _text, "lineart": _lineart, "hatching": _hatching, "facade": _facade,
         "screentone": _screentone, "diagram": _diagram}


def render(kind: str, seed: int, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """One ``(height, width, 3)`` uint8 image of ``kind`` (one of :data:`KINDS`), ``size`` = (width, height)."""
    if kind not in _DRAW:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    rng = random.Random(f"{kind}-{seed}")
    w, h = size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE
    canvas = Image.new("RGB", (w, h), rng.choice(PAPERS))
    _DRAW[kind](ImageDraw.Draw(canvas), rng, w, h)
    return np.asarray(canvas.resize(size, Image.Resampling.LANCZOS))


def write_set(folder: Path, per_kind: int = 2, size: tuple[int, int] = (480, 360), first_seed: int = 0) -> list[Path]:
    """Write ``per_kind`` images of every kind as ``folder/HR/<kind>-<seed>.png``; returns the paths.

    Seeds run from ``first_seed``: a training set of pages takes seeds far from the validation pages'
    (0, 1, ...), so the validation pages stay unseen. The default 480x360 divides by 2, 3 and 4, so no
    scale crops it.
    """
    out = folder / "HR"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in KINDS:
        for seed in range(first_seed, first_seed + per_kind):
            path = out / f"{kind}-{seed}.png"
            Image.fromarray(render(kind, seed, size)).save(path)
            paths.append(path)
    return paths
