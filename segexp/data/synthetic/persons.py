"""`synthetic_persons`: person-like figures whose identity is fixed and whose clothing changes.

Identity (fixed per person id): body build and height, skin tone, hair colour and style, accessories.
Clothing (drawn per image): upper and lower garment colour and pattern. Every image comes with an identity
description and a clothing description; train and test use disjoint identities.
"""
from __future__ import annotations

import numpy as np

from segexp.data.synthetic.raster import coverage, texture

SKIN = {"pale": (240, 205, 180), "light": (222, 178, 140), "tan": (190, 140, 100), "brown": (140, 95, 60), "dark": (90, 60, 40)}
HAIR = {"black": (25, 20, 20), "brown": (100, 60, 30), "blonde": (230, 200, 110), "red": (170, 60, 30), "grey": (160, 160, 160)}
HAIR_STYLES = ("short", "long", "bald", "ponytail")
BUILDS = {"slim": 0.8, "average": 1.0, "broad": 1.25}
HEIGHTS = {"short": 0.85, "medium": 0.93, "tall": 1.0}
ACCESSORIES = ("none", "backpack", "hat", "glasses", "handbag")
CLOTH_COLOURS = {
    "red": (200, 40, 40), "blue": (40, 70, 200), "green": (40, 150, 60), "white": (235, 235, 235),
    "black": (30, 30, 30), "yellow": (230, 200, 40), "grey": (120, 120, 120), "pink": (230, 130, 170),
}
PATTERNS = ("plain", "striped", "checked", "dotted")
UPPER = ("shirt", "jacket", "t-shirt", "sweater")
LOWER = ("trousers", "shorts", "skirt", "jeans")


def _pick(rng, seq):
    keys = list(seq)
    return keys[int(rng.integers(len(keys)))]


class PersonsGenerator:
    def __init__(self, image_size: tuple[int, int] = (128, 64), texture_strength: float = 0.4, supersample: int = 3):
        self.size = tuple(image_size)
        self.texture_strength = texture_strength
        self.supersample = supersample

    def identity(self, seed: int, pid: int) -> dict:
        rng = np.random.default_rng([seed, 7, pid])
        return {
            "pid": pid, "skin": _pick(rng, SKIN), "hair": _pick(rng, HAIR), "hair_style": _pick(rng, HAIR_STYLES),
            "build": _pick(rng, BUILDS), "height": _pick(rng, HEIGHTS), "accessory": _pick(rng, ACCESSORIES),
        }

    def clothing(self, rng: np.random.Generator) -> dict:
        upper, lower = _pick(rng, CLOTH_COLOURS), _pick(rng, CLOTH_COLOURS)
        return {
            "upper_colour": upper, "upper_pattern": _pick(rng, PATTERNS), "upper": _pick(rng, UPPER),
            "lower_colour": lower, "lower_pattern": _pick(rng, PATTERNS), "lower": _pick(rng, LOWER),
        }

    @staticmethod
    def id_text(ident: dict) -> str:
        hair = "no hair" if ident["hair_style"] == "bald" else f"{ident['hair_style']} {ident['hair']} hair"
        acc = {"none": "", "backpack": ", carrying a backpack", "hat": ", wearing a hat", "glasses": ", wearing glasses",
               "handbag": ", carrying a handbag"}[ident["accessory"]]
        return f"a {ident['height']} {ident['build']} person with {ident['skin']} skin and {hair}{acc}"

    @staticmethod
    def cloth_text(cl: dict) -> str:
        def garment(colour, pattern, name):
            return f"a {colour} {name}" if pattern == "plain" else f"a {pattern} {colour} {name}"

        return (f"wearing {garment(cl['upper_colour'], cl['upper_pattern'], cl['upper'])} and "
                f"{garment(cl['lower_colour'], cl['lower_pattern'], cl['lower'])}")

    def _pattern(self, rng, colour, pattern, size) -> np.ndarray:
        h, w = size
        base = np.array(CLOTH_COLOURS[colour], np.float32)
        alt = 255 - base if colour not in ("grey",) else base * 0.4
        yy, xx = np.mgrid[0:h, 0:w]
        if pattern == "striped":
            sel = (yy // 3) % 2 == 0
        elif pattern == "checked":
            sel = ((yy // 4) + (xx // 4)) % 2 == 0
        elif pattern == "dotted":
            sel = ((yy % 5) < 2) & ((xx % 5) < 2)
        else:
            sel = np.zeros((h, w), bool)
        img = np.broadcast_to(base, (h, w, 3)).copy()
        img[sel] = alt
        return img

    def texts(self, seed: int, pid: int, index: int) -> tuple[str, str]:
        """(identity text, clothing text) of `render(seed, pid, index)` without drawing the image."""
        cloth = self.clothing(np.random.default_rng([seed, 11, pid, index]))
        return self.id_text(self.identity(seed, pid)), self.cloth_text(cloth)

    def render(self, seed: int, pid: int, index: int) -> dict:
        ident = self.identity(seed, pid)
        rng = np.random.default_rng([seed, 11, pid, index])
        cloth = self.clothing(rng)
        h, w = self.size
        img = texture(rng, self.size, self.texture_strength)
        scale = HEIGHTS[ident["height"]] * rng.uniform(0.95, 1.0)
        bw = BUILDS[ident["build"]]
        cx = w / 2 + rng.uniform(-0.06, 0.06) * w
        top = h * (1 - scale) + 2
        unit = (h - top) / 8.0  # a figure is ~8 head-units tall

        def paint(cov, rgb):
            nonlocal img
            img = img * (1 - cov[..., None]) + np.asarray(rgb, np.float32)[..., None, None, :].reshape(1, 1, 3) * cov[..., None]

        def paint_tex(cov, tex):
            nonlocal img
            img = img * (1 - cov[..., None]) + tex * cov[..., None]

        s = self.supersample
        skin = SKIN[ident["skin"]]
        # legs (lower garment)
        lower_tex = self._pattern(rng, cloth["lower_colour"], cloth["lower_pattern"], self.size)
        leg_len = 3.6 * unit if cloth["lower"] != "shorts" else 1.8 * unit
        for dx in (-0.45, 0.45):
            paint(coverage("rect", self.size, (top + 6.0 * unit, cx + dx * unit * bw), (1.9 * unit, 0.38 * unit * bw), 0, s), skin)
            paint_tex(coverage("rect", self.size, (top + 4.2 * unit + leg_len / 2, cx + dx * unit * bw), (leg_len / 2, 0.42 * unit * bw), 0, s), lower_tex)
        if cloth["lower"] == "skirt":
            paint_tex(coverage("triangle", self.size, (top + 4.9 * unit, cx), (1.2 * unit, 1.4 * unit * bw), 0, s), lower_tex)
        # torso and arms (upper garment)
        upper_tex = self._pattern(rng, cloth["upper_colour"], cloth["upper_pattern"], self.size)
        paint_tex(coverage("rect", self.size, (top + 3.0 * unit, cx), (1.35 * unit, 1.0 * unit * bw), 0, s), upper_tex)
        arm = skin if cloth["upper"] == "t-shirt" else None
        for dx in (-1.25, 1.25):
            cov = coverage("rect", self.size, (top + 3.0 * unit, cx + dx * unit * bw), (1.3 * unit, 0.25 * unit), 0, s)
            paint(cov, arm) if arm is not None else paint_tex(cov, upper_tex)
        # head and hair
        head_c = (top + 1.0 * unit, cx)
        paint(coverage("circle", self.size, head_c, (0.85 * unit, 0.72 * unit), 0, s), skin)
        hair = HAIR[ident["hair"]]
        if ident["hair_style"] != "bald":
            paint(coverage("ellipse", self.size, (head_c[0] - 0.55 * unit, cx), (0.45 * unit, 0.8 * unit), 0, s), hair)
        if ident["hair_style"] == "long":
            paint(coverage("rect", self.size, (head_c[0] + 0.5 * unit, cx), (0.9 * unit, 0.8 * unit), 0, s) *
                  (1 - coverage("circle", self.size, (head_c[0] + 0.2, cx), (0.8 * unit, 0.6 * unit), 0, s)), hair)
        if ident["hair_style"] == "ponytail":
            paint(coverage("ellipse", self.size, (head_c[0] + 0.2 * unit, cx + 0.9 * unit), (0.7 * unit, 0.25 * unit), 0.3, s), hair)
        acc = ident["accessory"]
        if acc == "hat":
            paint(coverage("rect", self.size, (head_c[0] - 0.9 * unit, cx), (0.25 * unit, 1.0 * unit), 0, s), (60, 40, 120))
        elif acc == "glasses":
            for dx in (-0.3, 0.3):
                paint(coverage("ring", self.size, (head_c[0], cx + dx * unit), (0.2 * unit, 0.2 * unit), 0, s), (20, 20, 20))
        elif acc == "backpack":
            paint(coverage("rect", self.size, (top + 3.0 * unit, cx - 1.1 * unit * bw), (1.0 * unit, 0.35 * unit), 0, s), (90, 60, 30))
        elif acc == "handbag":
            paint(coverage("square", self.size, (top + 4.6 * unit, cx + 1.6 * unit * bw), (0.5 * unit, 0.5 * unit), 0, s), (150, 30, 90))
        return {
            "image": np.clip(img + 0.5, 0, 255).astype(np.uint8),
            "pid": pid,
            "identity": ident,
            "clothing": cloth,
            "id_text": self.id_text(ident),
            "cloth_text": self.cloth_text(cloth),
            "cloth_label": list(CLOTH_COLOURS).index(cloth["upper_colour"]) * len(CLOTH_COLOURS)
            + list(CLOTH_COLOURS).index(cloth["lower_colour"]),
        }
