"""Anti-aliased rasterisation of analytic shapes by supersampling (numpy only)."""
from __future__ import annotations

import numpy as np


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of local, radius-normalised coordinates (u, v) in a unit shape."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "triangle":  # vertices (0,-1), (±0.866, 0.5)
        return (v <= 0.5) & (v >= -1.0 + 1.7320508 * np.abs(u))
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.36)
    if shape == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
    if shape == "ellipse":
        return (u / 1.0) ** 2 + (v / 0.6) ** 2 <= 1.0
    if shape == "rect":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    raise ValueError(f"unknown shape {shape!r}")


SHAPE_NAMES = ("circle", "square", "diamond", "triangle", "ring", "cross", "ellipse", "rect")


def coverage(
    shape: str,
    size: tuple[int, int],
    centre: tuple[float, float],
    radius: tuple[float, float],
    angle: float = 0.0,
    supersample: int = 4,
) -> np.ndarray:
    """Fraction of each pixel covered by the shape: float32 [H, W] in [0, 1].

    centre (cy, cx) and radius (ry, rx) are in pixels; only the shape's bounding box is sampled.
    """
    h, w = size
    cy, cx = centre
    ry, rx = radius
    reach = 1.5 * max(ry, rx)
    y0, y1 = max(int(cy - reach), 0), min(int(np.ceil(cy + reach)) + 1, h)
    x0, x1 = max(int(cx - reach), 0), min(int(np.ceil(cx + reach)) + 1, w)
    out = np.zeros((h, w), np.float32)
    if y1 <= y0 or x1 <= x0:
        return out
    s = supersample
    ys = y0 + (np.arange((y1 - y0) * s) + 0.5) / s
    xs = x0 + (np.arange((x1 - x0) * s) + 0.5) / s
    yy, xx = np.meshgrid(ys - cy, xs - cx, indexing="ij")
    c, sn = np.cos(angle), np.sin(angle)
    u = (c * xx + sn * yy) / rx
    v = (-sn * xx + c * yy) / ry
    hit = _inside(shape, u, v).astype(np.float32)
    out[y0:y1, x0:x1] = hit.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3))
    return out


def texture(rng: np.random.Generator, size: tuple[int, int], strength: float) -> np.ndarray:
    """A muted, textured RGB background: float32 [H, W, 3] in [0, 255]."""
    h, w = size
    base = rng.uniform(70, 190, size=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
    for _ in range(2):  # two oriented sinusoidal gratings
        f = rng.uniform(0.02, 0.12)
        th = rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * f * (np.cos(th) * xx + np.sin(th) * yy) + rng.uniform(0, 6.28))
        img += strength * 25.0 * wave[..., None] * rng.uniform(-1, 1, size=3)
    img += strength * rng.normal(0, 12.0, size=(h, w, 3))
    return np.clip(img, 0, 255)
