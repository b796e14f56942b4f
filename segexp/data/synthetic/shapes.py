"""`synthetic_shapes`: scenes of 1-5 coloured shapes on textured backgrounds, generated from a seed.

Every scene is a pure function of (seed, split, index), so the dataset needs no files and two runs see the
same pixels. Semantic classes are "<colour> <shape>" (or shapes / colours alone, by `class_by`), 0 is
background and 255 marks anti-aliased border pixels whose coverage is mixed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from segexp.data.synthetic.raster import SHAPE_NAMES, coverage, texture

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 170, 60),
    "blue": (35, 75, 215),
    "yellow": (235, 210, 35),
    "purple": (145, 55, 190),
    "orange": (245, 135, 25),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}

# A square turned by 45° is a diamond: both keep (nearly) their upright pose, or their names would describe the
# same pixels (a CLIP trained on them could not tell them apart). Other shapes turn freely.
_ANGLES = {"square": (-0.2, 0.2), "diamond": (-0.2, 0.2)}
#: bumped when rendering changes, so fingerprints (and the feature caches keyed by them) change with it
GEOMETRY_VERSION = 2

_POS_WORDS = [["top left", "top", "top right"], ["left", "centre", "right"], ["bottom left", "bottom", "bottom right"]]
_SENTENCES = [
    "a photo of {objs}.",
    "there is {objs}.",
    "an image showing {objs}.",
    "{objs} on a textured background.",
    "a picture with {objs}.",
]
_OBJECT_FORMS = ["{a} {name} in the {pos}", "{a} {name} at the {pos}", "{a} {name} ({pos})", "{a} {name} towards the {pos}"]


@dataclass
class Scene:
    image: np.ndarray  # uint8 [H, W, 3]
    semantic: np.ndarray  # uint8 [H, W]: 0 background, 1..K classes, 255 ignore
    instances: list[np.ndarray]  # bool [H, W] per object (visible part)
    instance_classes: list[int]
    objects: list[dict] = field(default_factory=list)
    caption: str = ""


class ShapesGenerator:
    def __init__(
        self,
        image_size: int | tuple[int, int] = 224,
        shapes: tuple[str, ...] = ("circle", "square", "triangle", "ring", "cross", "diamond"),
        colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange"),
        class_by: str = "shape_colour",
        min_objects: int = 1,
        max_objects: int = 5,
        min_scale: float = 0.1,
        max_scale: float = 0.25,
        texture_strength: float = 0.6,
        colour_jitter: float = 20.0,
        supersample: int = 4,
    ):
        self.size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        unknown = [s for s in shapes if s not in SHAPE_NAMES] + [c for c in colours if c not in COLOURS]
        if unknown:
            raise ValueError(f"unknown shapes/colours {unknown}; shapes: {SHAPE_NAMES}, colours: {list(COLOURS)}")
        if not 1 <= min_objects <= max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
        self.shapes, self.colours = tuple(shapes), tuple(colours)
        self.class_by = class_by
        self.min_objects, self.max_objects = min_objects, max_objects
        self.min_scale, self.max_scale = min_scale, max_scale
        self.texture_strength, self.colour_jitter, self.supersample = texture_strength, colour_jitter, supersample
        if len(self.shapes) * len(self.colours) > 254:
            raise ValueError("at most 254 classes fit the uint8 label maps")
        if class_by == "shape_colour":
            self.class_names = ["background"] + [f"{c} {s}" for s in self.shapes for c in self.colours]
        elif class_by == "shape":
            self.class_names = ["background", *self.shapes]
        elif class_by == "colour":
            self.class_names = ["background"] + [f"{c} object" for c in self.colours]
        else:
            raise ValueError(f"class_by must be shape_colour, shape or colour, got {class_by!r}")

    def fingerprint(self) -> str:
        cfg = {k: v for k, v in vars(self).items() if k != "class_names"} | {"geometry": GEOMETRY_VERSION}
        return hashlib.sha1(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def class_of(self, shape: str, colour: str) -> int:
        if self.class_by == "shape_colour":
            return 1 + self.shapes.index(shape) * len(self.colours) + self.colours.index(colour)
        if self.class_by == "shape":
            return 1 + self.shapes.index(shape)
        return 1 + self.colours.index(colour)

    def layout(self, rng: np.random.Generator) -> list[dict]:
        """Object placements with limited overlap, so every object stays visible."""
        h, w = self.size
        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        objs: list[dict] = []
        for _ in range(n):
            for _try in range(30):
                r = rng.uniform(self.min_scale, self.max_scale) * min(h, w)
                cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
                if all(np.hypot(cy - o["cy"], cx - o["cx"]) > 0.9 * (r + o["r"]) for o in objs):
                    break
            else:
                continue
            shape = self.shapes[int(rng.integers(len(self.shapes)))]
            colour = self.colours[int(rng.integers(len(self.colours)))]
            aspect = float(rng.uniform(0.8, 1.2))
            lo, hi = _ANGLES.get(shape, (0.0, np.pi))
            objs.append({"shape": shape, "colour": colour, "cy": float(cy), "cx": float(cx), "r": float(r),
                         "aspect": aspect, "angle": float(rng.uniform(lo, hi))})
        return objs

    def render(self, rng: np.random.Generator, objs: list[dict]) -> Scene:
        h, w = self.size
        img = texture(rng, self.size, self.texture_strength)
        k = len(self.class_names)
        share = np.zeros((k, h, w), np.float32)
        share[0] = 1.0
        visible = []
        for o in objs:
            cov = coverage(o["shape"], self.size, (o["cy"], o["cx"]), (o["r"], o["r"] * o["aspect"]), o["angle"], self.supersample)
            colour = np.clip(np.array(COLOURS[o["colour"]]) + rng.uniform(-1, 1, 3) * self.colour_jitter, 0, 255)
            img = img * (1 - cov[..., None]) + colour * cov[..., None]
            share *= 1 - cov  # what is behind loses the covered fraction
            share[self.class_of(o["shape"], o["colour"])] += cov
            visible = [v * (1 - cov) for v in visible] + [cov]
        semantic = share.argmax(0).astype(np.uint8)
        semantic[share.max(0) < 0.99] = 255
        instances = [v >= 0.5 for v in visible]
        for o in objs:
            o["pos"] = _POS_WORDS[min(int(3 * o["cy"] / h), 2)][min(int(3 * o["cx"] / w), 2)]
        return Scene(
            image=np.clip(img + 0.5, 0, 255).astype(np.uint8),
            semantic=semantic,
            instances=instances,
            instance_classes=[self.class_of(o["shape"], o["colour"]) for o in objs],
            objects=objs,
            caption=self.caption(rng, objs),
        )

    def caption(self, rng: np.random.Generator, objs: list[dict]) -> str:
        parts = [
            _OBJECT_FORMS[int(rng.integers(len(_OBJECT_FORMS)))].format(
                a="an" if o["colour"][0] in "aeiou" else "a", name=f"{o['colour']} {o['shape']}", pos=o["pos"])
            for o in objs
        ]
        joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return _SENTENCES[int(rng.integers(len(_SENTENCES)))].format(objs=joined)

    def scene(self, seed: int, split: int, index: int) -> Scene:
        objs = self.layout(np.random.default_rng([seed, split, index, 0]))
        return self.render(np.random.default_rng([seed, split, index, 1]), objs)

    def num_objects(self, seed: int, split: int, index: int) -> int:
        return len(self.layout(np.random.default_rng([seed, split, index, 0])))
