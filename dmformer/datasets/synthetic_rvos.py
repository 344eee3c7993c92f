# Copyright (c) OpenMMLab. All rights reserved.
"""Generate the built-in synthetic referring-video dataset.

Every video shows 2-4 textured shapes (circle, square, triangle, star,
diamond) in several colours and two sizes that move linearly, bounce off
the borders and occlude each other in a fixed depth order over a noisy
textured background. The dataset is written in one of two real on-disk
layouts (``--layout``), so the dataset classes of the real benchmark read
it unchanged.

``ytvos`` (default), the Ref-YouTube-VOS layout; palette PNG value =
object id (0 = background)::

    <out>/train/JPEGImages/<video>/<frame>.jpg
    <out>/train/Annotations/<video>/<frame>.png      # DAVIS palette, 'P'
    <out>/train/meta.json
    <out>/valid/{JPEGImages,Annotations}/<video>/... # held-out, with GT
    <out>/valid/meta.json
    <out>/meta_expressions/{train,valid}/meta_expressions.json
    <out>/meta_expressions/{train,valid}/subject_labels.json
    <out>/meta_expressions/{train,valid}/swap_pairs.json
    <out>/meta_expressions/{train,valid}/expression_info.json
    <out>/meta_expressions/test/meta_expressions.json  # {"videos": {}}
    <out>/synthetic_rvos_info.json                     # generation params

Videos are ``train_0000``, ... and ``valid_0000``, ...; an expression's
``obj_id`` is the palette id as a string.

``mevis``, the MeViS layout (an expression may refer to several
objects)::

    <out>/train/JPEGImages/<video>/<frame>.jpg
    <out>/train/meta_expressions.json
    <out>/train/mask_dict.json
    <out>/train/subject_labels.json
    <out>/train/swap_pairs.json
    <out>/train/expression_info.json
    <out>/valid_u/...               # same files: held-out split with GT
    <out>/valid/JPEGImages/<video>/<frame>.jpg
    <out>/valid/meta_expressions.json  # no GT: expressions carry only "exp"
    <out>/synthetic_rvos_info.json     # generation params, layout="mevis"

Videos are ``train_0000``, ..., ``valid_u_0000``, ... and
``valid_0000``, ... (``--num-train``, ``--num-valid``, ``--num-test``).
``meta_expressions.json`` is ``{"videos": {video: {"expressions":
{exp_id: {"exp": str, "obj_id": [int], "anno_id": [int]}}, "frames":
[str]}}}``: ``obj_id`` is the object index in the video (palette id - 1)
and ``anno_id`` its track id, unique in the split; the two lists are
parallel. ``mask_dict.json`` is ``{str(anno_id): [rle | null per frame]}``
with COCO compressed RLEs (``counts`` an ASCII string, ``size`` [h, w])
and null where the object is not visible. ``expression_info.json`` holds
per expression ``type``, ``obj_ids`` (as ``obj_id``), ``anno_ids``,
``subject``, ``motion``, ``relation``, ``anchor_obj_id`` (an object index
too), ``anchor_span`` and ``description`` (see below). The scenes and
single-object expressions of ``train`` and ``valid_u`` are those of the
``ytvos`` ``train`` and ``valid`` for the same seed.

Expressions come from a small grammar (lower case, single spaces)::

    EXP    := NP | NP MOTION | NP REL NP
    NP     := 'the' [SIZE] [COLOUR] [TEXTURE] SHAPE    # 'plain' goes first
    MOTION := 'moving left' | 'going up' | 'that is not moving' | ...
    REL    := 'to the left of' | 'above' | 'below' | 'next to' |
              'far from' | ...

The leading NP is the subject, and its character span ``[start, end)`` is
stored in ``subject_labels.json``. Every expression is true in the video
(relations and motions are computed from the object masks and from the
true shape centres, with a margin) and unambiguous: exactly one object
satisfies it and every other object clearly fails it. Swap pairs use a
symmetric relation on two objects whose NPs are unique on their own, e.g.
``the red circle next to the blue square`` (the red circle) and ``the blue
square next to the red circle`` (the blue square): the same bag of words
with a different referent.

The ``mevis`` layout adds, per video where the scene allows, 1-2
``multi_object`` and one ``motion_only`` expression::

    EXP    := PNP [PMOTION]                 # multi_object
            | 'the' GNOUN MOTION            # motion_only, one object
            | 'the' NUMBER GNOUNS PMOTION   # motion_only, several
    PNP    := 'the' NUMBER [SIZE] [COLOUR] [TEXTURE] (SHAPES | GNOUNS)
    NUMBER := 'two' | 'three' | ...
    SHAPES := 'circles' | 'squares' | 'triangles' | 'stars' | 'diamonds'
    GNOUN  := 'shape' | 'object'            # GNOUNS: 'shapes' | 'objects'
    PMOTION:= 'moving left' | ... | 'that are not moving' | 'standing still'

e.g. ``the two red shapes moving right``, ``the three shapes going down``,
``the object going up``. The referents are exactly the objects that
satisfy the description (each clearly, every other object clearly not;
undecided scenes get no such expression) and NUMBER is their count. The
subject is the leading NP (``the two red shapes``); ``description`` in
``expression_info.json`` is the NP as ``{"shape": str | null, attribute:
value, ...}``.

This module is the library; ``tools/dataset_converters/make_synthetic_rvos.py``
is its command line. Examples:

    python tools/dataset_converters/make_synthetic_rvos.py \\
        --out data/synthetic-rvos --num-train 48 --num-valid 12 \\
        --num-frames 10 --size 112 --seed 0

    python tools/dataset_converters/make_synthetic_rvos.py --layout mevis \\
        --out data/synthetic-mevis --num-train 48 --num-valid 12 \\
        --num-test 4 --num-frames 10 --size 112 --seed 0
"""
import itertools
import json
import math
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

__all__ = [
    'SHAPES', 'COLOURS', 'SIZES', 'TEXTURES', 'RELATIONS', 'MOTIONS',
    'davis_palette', 'frame_names', 'render_video', 'relation_truth',
    'motion_truth', 'generate_video', 'make_synthetic_rvos', 'LAYOUTS',
    'MEVIS_DEFAULT_NUM_TEST', 'NUMBER_WORDS', 'GENERIC_NOUNS', 'rle_track',
    'format_summary'
]

GENERATOR_VERSION = 1

SHAPES = ('circle', 'square', 'triangle', 'star', 'diamond')
# Nominal RGB colours; each object gets a small per-channel jitter.
COLOURS = {
    'red': (215, 35, 35),
    'green': (40, 170, 55),
    'blue': (40, 75, 220),
    'yellow': (240, 215, 35),
    'purple': (145, 55, 190),
    'orange': (245, 135, 25),
}
# Radius range as a fraction of the frame size.
SIZES = {'small': (0.075, 0.095), 'big': (0.13, 0.16)}
#: quality of the JPEG frames the generator writes
JPEG_QUALITY = 92
TEXTURES = ('plain', 'striped', 'dotted')
# Relation key -> surface phrases. ``next_to`` and ``far_from`` are
# symmetric and are the only ones used for swap pairs.
RELATIONS = {
    'left_of': ('to the left of', 'left of'),
    'right_of': ('to the right of', 'right of'),
    'above': ('above', ),
    'below': ('below', 'under'),
    'next_to': ('next to', 'beside', 'near'),
    'far_from': ('far from', 'far away from'),
}
SYMMETRIC_RELATIONS = ('next_to', 'far_from')
# Motion key -> surface phrases.
MOTIONS = {
    'left': ('moving left', 'moving to the left', 'going left'),
    'right': ('moving right', 'moving to the right', 'going right'),
    'up': ('moving up', 'going up'),
    'down': ('moving down', 'going down'),
    'still': ('that is not moving', 'standing still'),
}
# Plural agreement of the motion phrases (the others do not change).
_PLURAL_PHRASES = {'that is not moving': 'that are not moving'}
# Head nouns of multi-object and motion-only expressions.
_PLURAL_SHAPES = {s: f'{s}s' for s in SHAPES}
GENERIC_NOUNS = {'shape': 'shapes', 'object': 'objects'}
NUMBER_WORDS = {
    2: 'two',
    3: 'three',
    4: 'four',
    5: 'five',
    6: 'six',
    7: 'seven',
    8: 'eight'
}
# Unit direction (x, y) in image coordinates (y points down).
_DIRECTIONS = {
    'left': (-1., 0.),
    'right': (1., 0.),
    'up': (0., -1.),
    'down': (0., 1.),
}
_RELATION_DIRECTIONS = {
    'left_of': 'left',
    'right_of': 'right',
    'above': 'up',
    'below': 'down',
}

# Thresholds as fractions of the frame size. A predicate is True above
# ``*_HI``, False below ``*_LO`` and undecided in between; an expression
# is kept only if its referent is True and every other object is False.
DIR_HI, DIR_LO = 0.12, 0.04
NEAR_HI, NEAR_LO = 0.30, 0.40
FAR_HI, FAR_LO = 0.55, 0.45
MOVE_HI, MOVE_LO = 0.12, 0.03
STEP_LO = 0.01
# Visibility: an object must show at least MIN_VISIBLE_FRAC of its area in
# at least MIN_VISIBLE_FRAMES of the frames.
MIN_VISIBLE_FRAC = 0.3
MIN_VISIBLE_FRAMES = 0.8
_ATTRS = ('size', 'colour', 'texture')
LAYOUTS = ('ytvos', 'mevis')
_SPLITS = ('train', 'valid')
# MeViS splits, their rng stream index and whether they carry the GT;
# train and valid_u share the streams of the ytvos train and valid.
_MEVIS_SPLITS = (
    ('train', 0, True),
    ('valid_u', 1, True),
    ('valid', 2, False),
)
MEVIS_DEFAULT_NUM_TEST = 4
# Everything either layout writes under ``out_dir``.
_OUTPUTS = ('train', 'valid', 'valid_u', 'test', 'meta_expressions',
            'synthetic_rvos_info.json')
_IN_PROGRESS = '.synthetic_rvos_in_progress'

Truth = Optional[bool]


def davis_palette() -> List[int]:
    """The DAVIS / PASCAL-VOC palette (768 ints, index 1 = (128, 0, 0)).

    Returns:
        list[int]: Flat ``[r0, g0, b0, r1, ...]`` list for
        :meth:`PIL.Image.Image.putpalette`.
    """
    palette = []
    for index in range(256):
        r = g = b = 0
        cid = index
        for shift in range(7, -1, -1):
            r |= ((cid >> 0) & 1) << shift
            g |= ((cid >> 1) & 1) << shift
            b |= ((cid >> 2) & 1) << shift
            cid >>= 3
        palette.extend((r, g, b))
    return palette


def frame_names(num_frames: int) -> List[str]:
    """Frame names like Ref-YouTube-VOS: ``00000``, ``00005``, ...

    Args:
        num_frames (int): Number of frames.

    Returns:
        list[str]: Sorted frame names (5-digit, step 5).
    """
    return [f'{5 * i:05d}' for i in range(num_frames)]


# ----------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------
def _shape_polygon(shape: str, cx: float, cy: float,
                   r: float) -> np.ndarray:
    """Vertices of a polygonal shape, float ``[N, 2]`` in (x, y)."""
    if shape == 'square':
        h = 0.85 * r
        pts = [(-h, -h), (h, -h), (h, h), (-h, h)]
    elif shape == 'diamond':
        pts = [(0., -r), (r, 0.), (0., r), (-r, 0.)]
    elif shape == 'triangle':
        pts = [(r * math.cos(a), r * math.sin(a))
               for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
        # Shift down so the centroid of the drawn area is near (cx, cy).
        pts = [(x, y + 0.1 * r) for x, y in pts]
    elif shape == 'star':
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else 0.45 * r
            ang = -math.pi / 2 + k * math.pi / 5
            pts.append((rad * math.cos(ang), rad * math.sin(ang)))
    else:
        raise ValueError(f'unknown polygonal shape {shape!r}')
    return np.array(pts, dtype=np.float64) + np.array([cx, cy])


def _shape_mask(shape: str, cx: float, cy: float, r: float,
                size: int) -> np.ndarray:
    """Binary mask ``[size, size]`` (bool) of one shape at sub-pixel
    precision (cv2 fixed-point coordinates with 4 fractional bits)."""
    canvas = np.zeros((size, size), dtype=np.uint8)
    scale = 16
    if shape == 'circle':
        cv2.circle(canvas, (int(round(cx * scale)), int(round(cy * scale))),
                   int(round(r * scale)), 1, -1, cv2.LINE_8, 4)
    else:
        pts = np.round(_shape_polygon(shape, cx, cy, r) * scale)
        cv2.fillPoly(canvas, [pts.astype(np.int32)], 1, cv2.LINE_8, 4)
    return canvas.astype(bool)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Muted, low-frequency noise plus a faint pattern, float ``[H, W, 3]``.
    """
    base = rng.uniform(80, 165)
    grid = rng.integers(3, 7)
    coarse = base + rng.normal(0, 22, size=(grid, grid, 3))
    # Low saturation: pull the channels towards their mean.
    coarse = 0.4 * coarse + 0.6 * coarse.mean(-1, keepdims=True)
    bg = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    kind = rng.integers(0, 3)
    period = rng.uniform(5, 12)
    if kind == 0:  # faint oblique waves
        ang = rng.uniform(0, math.pi)
        pattern = np.sin((xx * math.cos(ang) + yy * math.sin(ang)) *
                         2 * math.pi / period)
    elif kind == 1:  # faint checkerboard
        pattern = (((xx // period) + (yy // period)) % 2) * 2 - 1
    else:  # fine grain
        pattern = cv2.GaussianBlur(rng.normal(0, 1, (size, size)), (0, 0),
                                   1.2) * 2
    bg = bg + rng.uniform(4, 10) * pattern[..., None]
    return bg


def _texture_shade(texture: str, cx: float, cy: float, r: float,
                   size: int) -> np.ndarray:
    """Multiplicative shading ``[H, W]`` of a texture that moves with the
    object (1 = nominal colour)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    if texture == 'plain':
        return np.ones((size, size))
    period = max(3.0, 0.5 * r)
    if texture == 'striped':
        stripe = np.floor((dx + dy) / period) % 2 == 0
        return np.where(stripe, 0.45, 1.0)
    if texture == 'dotted':
        px = (dx % period) - period / 2
        py = (dy % period) - period / 2
        dot = px**2 + py**2 <= (0.3 * period)**2
        return np.where(dot, 0.4, 1.0)
    raise ValueError(f'unknown texture {texture!r}')


def render_video(objects: Sequence[dict], size: int,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray,
                                                    np.ndarray]:
    """Render the frames and the object-id masks of one video.

    Args:
        objects (Sequence[dict]): Objects with keys ``obj_id`` (int >= 1),
            ``shape``, ``colour``, ``texture``, ``rgb`` (3 ints),
            ``radius`` (float, pixels), ``depth`` (int, larger = closer)
            and ``centres`` (float array ``[T, 2]`` in (x, y) pixels).
        size (int): Frame height and width.
        rng (np.random.Generator): Source of the background and noise.

    Returns:
        tuple: ``frames`` uint8 ``[T, H, W, 3]`` RGB; ``id_maps`` uint8
        ``[T, H, W]`` with the visible object id per pixel (0 =
        background); ``full_area`` int ``[T, K]``, the unoccluded area of
        object k (in ``objects`` order) in frame t.
    """
    num_frames = len(objects[0]['centres'])
    bg = _background(rng, size)
    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    id_maps = np.zeros((num_frames, size, size), dtype=np.uint8)
    full_area = np.zeros((num_frames, len(objects)), dtype=np.int64)
    order = sorted(range(len(objects)), key=lambda k: objects[k]['depth'])
    for t in range(num_frames):
        img = bg + rng.normal(0, 3, size=bg.shape)
        ids = np.zeros((size, size), dtype=np.uint8)
        for k in order:
            obj = objects[k]
            cx, cy = obj['centres'][t]
            mask = _shape_mask(obj['shape'], cx, cy, obj['radius'], size)
            full_area[t, k] = int(mask.sum())
            shade = _texture_shade(obj['texture'], cx, cy, obj['radius'],
                                   size)
            colour = np.asarray(obj['rgb'], dtype=np.float64)
            img[mask] = shade[mask][:, None] * colour
            ids[mask] = obj['obj_id']
        img = img + rng.normal(0, 2.5, size=img.shape)
        frames[t] = np.clip(np.round(img), 0, 255).astype(np.uint8)
        id_maps[t] = ids
    return frames, id_maps, full_area


# ----------------------------------------------------------------------
# Scene sampling
# ----------------------------------------------------------------------
def _trajectory(start: np.ndarray, velocity: np.ndarray, radius: float,
                size: int, num_frames: int) -> np.ndarray:
    """Linear motion with elastic bounces, centres ``[T, 2]`` (x, y)."""
    lo, hi = radius + 1.0, size - 2.0 - radius
    pos, vel = start.astype(np.float64).copy(), velocity.copy()
    centres = np.zeros((num_frames, 2))
    for t in range(num_frames):
        centres[t] = pos
        pos = pos + vel
        for d in range(2):
            if pos[d] < lo:
                pos[d], vel[d] = 2 * lo - pos[d], -vel[d]
            elif pos[d] > hi:
                pos[d], vel[d] = 2 * hi - pos[d], -vel[d]
            pos[d] = min(max(pos[d], lo), hi)
    return centres


def _sample_objects(rng: np.random.Generator, size: int, num_frames: int,
                    num_objects: int) -> List[dict]:
    """Sample attributes and trajectories; attribute tuples are distinct,
    so the full NP always identifies an object."""
    objects: List[dict] = []
    seen = set()
    while len(objects) < num_objects:
        if objects and rng.random() < 0.35:
            # A distractor that shares shape and colour with an earlier
            # object, so that size, texture, motion or relations are
            # needed to tell them apart.
            ref = objects[rng.integers(len(objects))]
            shape, colour = ref['shape'], ref['colour']
        else:
            shape = SHAPES[rng.integers(len(SHAPES))]
            colour = list(COLOURS)[rng.integers(len(COLOURS))]
        size_name = list(SIZES)[rng.integers(len(SIZES))]
        texture = TEXTURES[rng.choice(3, p=[0.5, 0.25, 0.25])]
        key = (shape, colour, size_name, texture)
        if key in seen:
            continue
        seen.add(key)
        radius = size * rng.uniform(*SIZES[size_name])
        jitter = rng.integers(-15, 16, size=3)
        rgb = np.clip(np.array(COLOURS[colour]) + jitter, 0, 255)
        objects.append(
            dict(
                obj_id=len(objects) + 1,
                shape=shape,
                colour=colour,
                size=size_name,
                texture=texture,
                rgb=[int(v) for v in rgb],
                radius=float(radius)))
    depths = rng.permutation(num_objects)
    steps = max(num_frames - 1, 1)
    for k, obj in enumerate(objects):
        obj['depth'] = int(depths[k])
        r = obj['radius']
        start = rng.uniform(r + 1, size - 2 - r, size=2)
        if rng.random() < 0.15:
            velocity = np.zeros(2)
        else:
            ang = rng.uniform(0, 2 * math.pi)
            travel = size * rng.uniform(0.15, 0.5)
            velocity = travel / steps * np.array([math.cos(ang),
                                                  math.sin(ang)])
        obj['start'], obj['velocity'] = start, velocity
    if num_objects >= 2 and rng.random() < 0.6:
        # Make one pair travel side by side (a 'next to' candidate).
        a, b = rng.choice(num_objects, size=2, replace=False)
        oa, ob = objects[a], objects[b]
        ang = rng.uniform(0, 2 * math.pi)
        dist = size * rng.uniform(0.2, 0.27)
        start = oa['start'] + dist * np.array([math.cos(ang), math.sin(ang)])
        ob['start'] = np.clip(start, ob['radius'] + 1,
                              size - 2 - ob['radius'])
        ob['velocity'] = oa['velocity'] + rng.normal(0, 0.02 * size / steps,
                                                     2)
    for obj in objects:
        obj['centres'] = _trajectory(obj.pop('start'), obj.pop('velocity'),
                                     obj['radius'], size, num_frames)
    return objects


# ----------------------------------------------------------------------
# Predicates (three-valued: True, False, or None = undecided)
# ----------------------------------------------------------------------
def _and3(a: Truth, b: Truth) -> Truth:
    """Agreement of two estimates: True/False only if both say so."""
    if a is True and b is True:
        return True
    if a is False and b is False:
        return False
    return None


def _any3(values: Sequence[Truth]) -> Truth:
    """Three-valued OR: True if any is True, False if all are False."""
    if any(v is True for v in values):
        return True
    if all(v is False for v in values):
        return False
    return None


def relation_truth(relation: str, centre: Sequence[float],
                   anchor: Sequence[float], size: int) -> Truth:
    """Whether ``relation(object, anchor)`` holds between two positions.

    Positions are mean centres (x, y) over the video, in pixels, y down.
    Directional relations (``left_of``, ``right_of``, ``above``,
    ``below``) hold if the offset along the direction is at least
    ``DIR_HI * size`` and not smaller than the offset across it, and fail
    if it is at most ``DIR_LO * size``. ``next_to`` holds if the distance
    is at most ``NEAR_HI * size`` and fails from ``NEAR_LO * size``;
    ``far_from`` holds from ``FAR_HI * size`` and fails up to ``FAR_LO *
    size``.

    Args:
        relation (str): A key of :data:`RELATIONS`.
        centre (Sequence[float]): Mean (x, y) of the object.
        anchor (Sequence[float]): Mean (x, y) of the anchor object.
        size (int): Frame size in pixels.

    Returns:
        bool | None: True, False, or None when it is too close to call.
    """
    offset = np.asarray(anchor, float) - np.asarray(centre, float)
    if relation in _RELATION_DIRECTIONS:
        # 'A left of B': B lies to the right of A, i.e. along -left.
        unit = -np.asarray(_DIRECTIONS[_RELATION_DIRECTIONS[relation]])
        along = float(offset @ unit)
        across = float(abs(offset @ unit[::-1]))
        if along >= DIR_HI * size and along >= across:
            return True
        if along <= DIR_LO * size:
            return False
        return None
    dist = float(np.hypot(*offset))
    if relation == 'next_to':
        if dist <= NEAR_HI * size:
            return True
        return False if dist >= NEAR_LO * size else None
    if relation == 'far_from':
        if dist >= FAR_HI * size:
            return True
        return False if dist <= FAR_LO * size else None
    raise ValueError(f'unknown relation {relation!r}, expected one of '
                     f'{sorted(RELATIONS)}')


def motion_truth(motion: str, centres: np.ndarray, size: int,
                 per_step: bool = True) -> Truth:
    """Whether an object moves in a direction (or stands still).

    Args:
        motion (str): A key of :data:`MOTIONS`.
        centres (np.ndarray): Positions (x, y) over time, ``[T, 2]``.
        size (int): Frame size in pixels.
        per_step (bool): Also require every step to agree (for the true
            trajectory; disable for mask centroids, which jitter under
            occlusion).

    Returns:
        bool | None: True if the net displacement along the direction is
        at least ``MOVE_HI * size`` and dominant (and, with ``per_step``,
        no step goes backwards); False if it is at most ``MOVE_LO * size``
        (with ``per_step``: no step goes more than ``STEP_LO * size`` that
        way); None otherwise. ``still`` is True if the path length is at
        most ``STEP_LO * size`` and False from ``MOVE_HI * size``.
    """
    centres = np.asarray(centres, dtype=np.float64)
    steps = np.diff(centres, axis=0)
    if len(centres) < 2:
        return None
    if motion == 'still':
        if per_step:
            moved = float(np.hypot(steps[:, 0], steps[:, 1]).sum())
            still_hi = STEP_LO * size
        else:
            moved = float(np.hypot(*(centres - centres[0]).T).max())
            still_hi = MOVE_LO * size
        if moved <= still_hi:
            return True
        return False if moved >= MOVE_HI * size else None
    if motion not in _DIRECTIONS:
        raise ValueError(f'unknown motion {motion!r}, expected one of '
                         f'{sorted(MOTIONS)}')
    unit = np.asarray(_DIRECTIONS[motion])
    net = centres[-1] - centres[0]
    along = float(net @ unit)
    across = float(abs(net @ unit[::-1]))
    step_along = steps @ unit
    if along >= MOVE_HI * size and along >= across and (
            not per_step or bool((step_along >= 0).all())):
        return True
    if per_step:
        if len(step_along) == 0 or step_along.max() <= STEP_LO * size:
            return False
    elif along <= MOVE_LO * size:
        return False
    return None


# ----------------------------------------------------------------------
# Expression grammar
# ----------------------------------------------------------------------
def _np_text(obj: dict, attrs: Sequence[str]) -> str:
    """Noun phrase ``the [size] [plain] [colour] [striped|dotted] shape``.
    """
    words = ['the']
    if 'size' in attrs:
        words.append(obj['size'])
    if 'texture' in attrs and obj['texture'] == 'plain':
        words.append('plain')
    if 'colour' in attrs:
        words.append(obj['colour'])
    if 'texture' in attrs and obj['texture'] != 'plain':
        words.append(obj['texture'])
    words.append(obj['shape'])
    return ' '.join(words)


def _matches(obj: dict, target: dict, attrs: Sequence[str]) -> bool:
    """Whether ``obj`` fits the NP that describes ``target`` with
    ``attrs`` (the shape is always part of the NP)."""
    return obj['shape'] == target['shape'] and all(
        obj[a] == target[a] for a in attrs)


def _attr_subsets() -> List[Tuple[str, ...]]:
    """All attribute subsets, smallest first."""
    return [
        c for n in range(len(_ATTRS) + 1)
        for c in itertools.combinations(_ATTRS, n)
    ]


class _Scene:
    """Objects of one video with the facts that the grammar needs."""

    def __init__(self, objects: List[dict], id_maps: np.ndarray,
                 size: int) -> None:
        self.objects = objects
        self.size = size
        self.mask_centres = []  # per object: [T_visible, 2]
        for obj in objects:
            pts = []
            for ids in id_maps:
                ys, xs = np.nonzero(ids == obj['obj_id'])
                if len(xs):
                    pts.append((xs.mean(), ys.mean()))
            self.mask_centres.append(np.asarray(pts).reshape(-1, 2))
        self.mean_true = [o['centres'].mean(0) for o in objects]
        self.mean_mask = [c.mean(0) for c in self.mask_centres]

    def relation(self, rel: str, a: int, b: int) -> Truth:
        """``rel(objects[a], objects[b])`` from both the true centres and
        the mask centroids."""
        return _and3(
            relation_truth(rel, self.mean_true[a], self.mean_true[b],
                           self.size),
            relation_truth(rel, self.mean_mask[a], self.mean_mask[b],
                           self.size))

    def motion(self, motion: str, a: int) -> Truth:
        """``motion`` of ``objects[a]`` from both estimates."""
        return _and3(
            motion_truth(motion, self.objects[a]['centres'], self.size),
            motion_truth(motion, self.mask_centres[a], self.size,
                         per_step=False))

    def np_unique(self, target: int, attrs: Sequence[str]) -> bool:
        """Whether the NP of ``target`` with ``attrs`` fits only it."""
        tgt = self.objects[target]
        return sum(_matches(o, tgt, attrs) for o in self.objects) == 1

    def denotes_only(self, target: int, attrs: Sequence[str],
                     modifier: Optional[tuple]) -> bool:
        """Whether ``NP(target, attrs) + modifier`` is True for the target
        and False for every other object.

        ``modifier`` is None, ``('motion', key)`` or ``('rel', key, anchor,
        anchor_attrs)``; the anchor NP must be unique on its own.
        """
        tgt = self.objects[target]
        for k, obj in enumerate(self.objects):
            if not _matches(obj, tgt, attrs):
                truth: Truth = False
            elif modifier is None:
                truth = True
            elif modifier[0] == 'motion':
                truth = self.motion(modifier[1], k)
            else:
                _, rel, anchor, anchor_attrs = modifier
                ref = self.objects[anchor]
                truth = _any3([
                    self.relation(rel, k, j)
                    for j, o in enumerate(self.objects)
                    if j != k and _matches(o, ref, anchor_attrs)
                ])
            if truth is not (k == target):
                return False
        return True


def _sample_attrs(rng: np.random.Generator,
                  valid: Sequence[Tuple[str, ...]]) -> Tuple[str, ...]:
    """Pick one of the valid attribute sets: shorter ones are likelier
    (weights 1, 0.5, 0.25 for 0, 1, 2 attributes beyond the minimum) and
    those that name the colour count twice, so that NPs are not mostly
    bare shape names."""
    smallest = min(len(s) for s in valid)
    weights = np.array([
        0.5**(len(s) - smallest) * (2.0 if 'colour' in s else 1.0)
        for s in valid
    ])
    return valid[rng.choice(len(valid), p=weights / weights.sum())]


def _choose_np(rng: np.random.Generator, scene: _Scene, target: int,
               modifier: Optional[tuple]) -> Optional[Tuple[str, ...]]:
    """An attribute set whose NP plus ``modifier`` refers to ``target``
    only (see :func:`_sample_attrs`), or None if there is none."""
    valid = [
        s for s in _attr_subsets()
        if scene.denotes_only(target, s, modifier)
    ]
    return _sample_attrs(rng, valid) if valid else None


def _unique_np(rng: np.random.Generator, scene: _Scene,
               obj: int) -> Tuple[str, ...]:
    """An attribute set whose NP alone identifies ``obj``."""
    return _sample_attrs(
        rng, [s for s in _attr_subsets() if scene.np_unique(obj, s)])


def _make_expression(scene: _Scene, target: int, attrs: Sequence[str],
                     kind: str, phrase: str = '',
                     key: Optional[str] = None,
                     anchor: Optional[int] = None,
                     anchor_attrs: Sequence[str] = ()) -> dict:
    """Assemble the text and its structure for one expression."""
    subject = _np_text(scene.objects[target], attrs)
    text = subject
    info = dict(
        type=kind,
        obj_id=str(scene.objects[target]['obj_id']),
        subject=[0, len(subject)],
        motion=None,
        relation=None,
        anchor_obj_id=None,
        anchor_span=None)
    if kind == 'motion':
        text = f'{subject} {phrase}'
        info['motion'] = key
    elif kind == 'relation':
        anchor_np = _np_text(scene.objects[anchor], anchor_attrs)
        text = f'{subject} {phrase} {anchor_np}'
        info['relation'] = key
        info['anchor_obj_id'] = str(scene.objects[anchor]['obj_id'])
        info['anchor_span'] = [len(text) - len(anchor_np), len(text)]
    info['exp'] = text
    return info


def _pick(rng: np.random.Generator, options: Sequence):
    return options[rng.integers(len(options))]


def _object_candidates(rng: np.random.Generator, scene: _Scene,
                       target: int) -> Dict[str, List[dict]]:
    """All valid expressions of ``target``, grouped by kind."""
    cands: Dict[str, List[dict]] = dict(attribute=[], motion=[], relation=[])
    attrs = _choose_np(rng, scene, target, None)
    cands['attribute'].append(
        _make_expression(scene, target, attrs, 'attribute'))
    for motion in MOTIONS:
        if scene.motion(motion, target) is not True:
            continue
        attrs = _choose_np(rng, scene, target, ('motion', motion))
        if attrs is not None:
            cands['motion'].append(
                _make_expression(scene, target, attrs, 'motion',
                                 _pick(rng, MOTIONS[motion]), motion))
    for anchor in range(len(scene.objects)):
        if anchor == target:
            continue
        anchor_attrs = _unique_np(rng, scene, anchor)
        for rel in RELATIONS:
            if scene.relation(rel, target, anchor) is not True:
                continue
            modifier = ('rel', rel, anchor, anchor_attrs)
            attrs = _choose_np(rng, scene, target, modifier)
            if attrs is not None:
                cands['relation'].append(
                    _make_expression(scene, target, attrs, 'relation',
                                     _pick(rng, RELATIONS[rel]), rel,
                                     anchor, anchor_attrs))
    return cands


def _swap_pairs(rng: np.random.Generator, scene: _Scene,
                max_pairs: int) -> List[Tuple[dict, dict]]:
    """Up to ``max_pairs`` pairs ``NP_a REL NP_b`` / ``NP_b REL NP_a``."""
    pairs = []
    num = len(scene.objects)
    combos = [(a, b) for a in range(num) for b in range(a + 1, num)]
    for idx in rng.permutation(len(combos)):
        a, b = combos[idx]
        rels = [
            r for r in SYMMETRIC_RELATIONS if scene.relation(r, a, b) is True
        ]
        if not rels:
            continue
        rel = _pick(rng, rels)
        phrase = _pick(rng, RELATIONS[rel])
        attrs_a = _unique_np(rng, scene, a)
        attrs_b = _unique_np(rng, scene, b)
        exp_a = _make_expression(scene, a, attrs_a, 'relation', phrase, rel,
                                 b, attrs_b)
        exp_b = _make_expression(scene, b, attrs_b, 'relation', phrase, rel,
                                 a, attrs_a)
        assert scene.denotes_only(a, attrs_a, ('rel', rel, b, attrs_b))
        assert scene.denotes_only(b, attrs_b, ('rel', rel, a, attrs_a))
        pairs.append((exp_a, exp_b))
        if len(pairs) >= max_pairs:
            break
    return pairs


# ----------------------------------------------------------------------
# Multi-object and motion-only expressions (MeViS layout)
# ----------------------------------------------------------------------
Description = Tuple[Optional[str], Tuple[Tuple[str, str], ...]]


def _fits(obj: dict, shape: Optional[str],
          values: Sequence[Tuple[str, str]]) -> bool:
    """Whether ``obj`` fits a NP with head ``shape`` (None = a generic
    noun, any shape) and the ``(attribute, value)`` pairs ``values``."""
    return (shape is None or obj['shape'] == shape) and all(
        obj[a] == v for a, v in values)


def _descriptions(objects: Sequence[dict]) -> List[Description]:
    """Every NP that fits at least one object, in a fixed order: the
    object's shape or a generic noun, with any subset of its attributes.
    """
    out: Dict[Description, None] = {}  # ordered set
    for obj in objects:
        for attrs in _attr_subsets():
            values = tuple((a, obj[a]) for a in attrs)
            out[(obj['shape'], values)] = None
            out[(None, values)] = None
    return list(out)


def _referents(scene: _Scene, motions: Dict[str, List[Truth]],
               desc: Description,
               motion: Optional[str]) -> Optional[Tuple[int, ...]]:
    """Indices of the objects that satisfy ``NP(desc) [motion]``, or None
    if the set is not clear cut (an object that fits the NP has an
    undecided motion)."""
    refs = []
    for k, obj in enumerate(scene.objects):
        if not _fits(obj, *desc):
            continue
        truth = True if motion is None else motions[motion][k]
        if truth is None:
            return None
        if truth:
            refs.append(k)
    return tuple(refs)


def _group_candidates(scene: _Scene) -> List[dict]:
    """All clear-cut multi-object and motion-only descriptions.

    Returns:
        list[dict]: Each with ``kind`` (``'multi_object'``: 2 or more
        referents, the NP names a shape or an attribute;
        ``'motion_only'``: a bare generic noun with a motion, any number
        of referents), ``desc``, ``motion`` (key or None) and ``refs``
        (object indices).
    """
    motions = {
        m: [scene.motion(m, k) for k in range(len(scene.objects))]
        for m in MOTIONS
    }
    cands = []
    for desc in _descriptions(scene.objects):
        bare = desc[0] is None and not desc[1]
        for motion in (None, ) + tuple(MOTIONS):
            if bare and motion is None:
                continue  # 'the two shapes': every object
            refs = _referents(scene, motions, desc, motion)
            if not refs or (not bare and len(refs) < 2):
                continue
            kind = 'motion_only' if bare else 'multi_object'
            cands.append(dict(kind=kind, desc=desc, motion=motion, refs=refs))
    return cands


def _group_text(rng: np.random.Generator, desc: Description,
                motion: Optional[str], count: int) -> Tuple[str, int]:
    """Text of ``NP(desc) [motion]`` for ``count`` referents (plural with a
    number word from 2) and the end of its subject NP."""
    shape, values = desc
    noun = shape or _pick(rng, sorted(GENERIC_NOUNS))
    if count >= 2:
        noun = _PLURAL_SHAPES[shape] if shape else GENERIC_NOUNS[noun]
    subject = _np_text(dict(values, shape=noun), [a for a, _ in values])
    if count >= 2:
        subject = f'the {NUMBER_WORDS[count]} {subject[4:]}'
    if motion is None:
        return subject, len(subject)
    phrase = _pick(rng, MOTIONS[motion])
    if count >= 2:
        phrase = _PLURAL_PHRASES.get(phrase, phrase)
    return f'{subject} {phrase}', len(subject)


def _make_group_expression(rng: np.random.Generator, scene: _Scene,
                           cand: dict) -> dict:
    """Assemble a multi-object or motion-only expression (the keys of
    :func:`_make_expression` plus ``obj_ids`` and ``description``)."""
    ids = [str(scene.objects[k]['obj_id']) for k in cand['refs']]
    text, end = _group_text(rng, cand['desc'], cand['motion'], len(ids))
    shape, values = cand['desc']
    return dict(
        type=cand['kind'],
        obj_id=ids[0] if len(ids) == 1 else None,
        obj_ids=ids,
        subject=[0, end],
        motion=cand['motion'],
        relation=None,
        anchor_obj_id=None,
        anchor_span=None,
        description={'shape': shape, **dict(values)},
        exp=text)


def _pick_description(rng: np.random.Generator,
                      cands: Sequence[dict]) -> dict:
    """One candidate of a referent set: with or without a motion (even
    odds when both exist), then as :func:`_sample_attrs` (fewer
    attributes likelier, colour favoured)."""
    with_motion = [c for c in cands if c['motion'] is not None]
    without = [c for c in cands if c['motion'] is None]
    if with_motion and without:
        cands = with_motion if rng.random() < 0.5 else without
    attrs = [tuple(a for a, _ in c['desc'][1]) for c in cands]
    chosen = _sample_attrs(rng, sorted(set(attrs)))
    return _pick(rng, [c for c, a in zip(cands, attrs) if a == chosen])


def _group_expressions(rng: np.random.Generator, scene: _Scene,
                       texts: set, max_multi: int = 2) -> List[dict]:
    """Up to ``max_multi`` multi-object expressions (distinct referent
    sets, 1 or more at random) and one motion-only expression whose texts
    are not in ``texts``."""
    cands = _group_candidates(scene)
    by_refs: Dict[Tuple[int, ...], List[dict]] = {}
    for cand in cands:
        if cand['kind'] == 'multi_object':
            by_refs.setdefault(cand['refs'], []).append(cand)
    sets = list(by_refs)
    out = []
    if sets:
        num = min(len(sets), int(rng.integers(1, max_multi + 1)))
        for idx in rng.permutation(len(sets))[:num]:
            cand = _pick_description(rng, by_refs[sets[idx]])
            out.append(_make_group_expression(rng, scene, cand))
    motion_only = [c for c in cands if c['kind'] == 'motion_only']
    if motion_only:
        out.append(
            _make_group_expression(rng, scene, _pick(rng, motion_only)))
    return [e for e in out if e['exp'] not in texts]


def generate_video(rng: np.random.Generator,
                   num_frames: int = 10,
                   size: int = 112,
                   min_objects: int = 2,
                   max_objects: int = 4,
                   exps_per_object: int = 2,
                   max_swap_pairs: int = 1,
                   max_tries: int = 100,
                   multi_object: bool = False,
                   max_multi: int = 2) -> dict:
    """Sample, render and describe one video.

    Args:
        rng (np.random.Generator): The only source of randomness.
        num_frames (int): Frames per video (T). Defaults to 10.
        size (int): Frame height and width (H = W). Defaults to 112.
        min_objects (int): Fewest objects (K). Defaults to 2.
        max_objects (int): Most objects. Defaults to 4.
        exps_per_object (int): Expressions per object besides the swap
            pairs. Defaults to 2.
        max_swap_pairs (int): Most swap pairs per video. Defaults to 1.
        max_tries (int): Scene resamplings allowed for the visibility
            constraint. Defaults to 100.
        multi_object (bool): Also add multi-object and motion-only
            expressions (MeViS layout), drawn from ``rng`` after all the
            rest, so the other outputs do not change. Defaults to False.
        max_multi (int): Most multi-object expressions per video (with
            ``multi_object``). Defaults to 2.

    Returns:
        dict: ``frames`` uint8 ``[T, H, W, 3]`` RGB; ``masks`` uint8
        ``[T, H, W]`` (object id per pixel, 0 = background); ``objects``
        (list of dicts with ``obj_id``, ``shape``, ``colour``, ``size``,
        ``texture``, ``depth``, ``visible`` = bool list over frames,
        ``radius`` and ``centres`` = true centres ``[T, 2]``);
        ``expressions`` (list of dicts with ``exp``, ``obj_id`` (str;
        None for several referents), ``type``, ``subject`` = ``[start,
        end)`` char span, ``motion``, ``relation``, ``anchor_obj_id``,
        ``anchor_span``; with ``multi_object`` also ``obj_ids`` (list of
        str, ascending) and ``description`` (the NP of a multi-object or
        motion-only expression, else None)); ``swap_pairs`` (list of
        index pairs into ``expressions``).
    """
    if not 1 <= min_objects <= max_objects <= 8:
        raise ValueError('need 1 <= min_objects <= max_objects <= 8, got '
                         f'{min_objects} and {max_objects}')
    for _ in range(max_tries):
        num_objects = int(rng.integers(min_objects, max_objects + 1))
        objects = _sample_objects(rng, size, num_frames, num_objects)
        frames, id_maps, full_area = render_video(objects, size, rng)
        visible_area = np.stack(
            [(id_maps == o['obj_id']).sum((1, 2)) for o in objects], 1)
        frac = visible_area / np.maximum(full_area, 1)
        good = (frac >= MIN_VISIBLE_FRAC).mean(0) >= MIN_VISIBLE_FRAMES
        if good.all():
            break
    else:
        raise RuntimeError(f'could not place {num_objects} visible objects '
                           f'in {max_tries} tries (size={size})')
    scene = _Scene(objects, id_maps, size)

    expressions: List[dict] = []
    texts = set()
    swap_index = []
    for exp_a, exp_b in _swap_pairs(rng, scene, max_swap_pairs):
        swap_index.append((len(expressions), len(expressions) + 1))
        expressions.extend([exp_a, exp_b])
        texts.update([exp_a['exp'], exp_b['exp']])
    for target in range(num_objects):
        cands = _object_candidates(rng, scene, target)
        for kind in ('attribute', 'motion', 'relation'):
            cands[kind] = [c for c in cands[kind] if c['exp'] not in texts]
        # One appearance or motion expression first, then relations,
        # then whatever is left.
        if cands['motion'] and (rng.random() < 0.6
                                or not cands['attribute']):
            first = cands['motion']
        else:
            first = cands['attribute']
        chosen = [_pick(rng, first)] if first else []
        # Relations: a random relation kind first, so that 'next to'
        # (true for many pairs) does not crowd out the directional ones.
        rels, others = cands['relation'], cands['attribute'] + cands['motion']
        kinds = sorted({c['relation'] for c in rels})
        kind_rank = {k: r for r, k in enumerate(rng.permutation(kinds))}
        order = [
            rels[i] for i in sorted(
                rng.permutation(len(rels)),
                key=lambda i: kind_rank[rels[i]['relation']])
        ]
        order += [others[i] for i in rng.permutation(len(others))]
        for cand in order:
            if len(chosen) >= exps_per_object:
                break
            if cand['exp'] not in {c['exp'] for c in chosen}:
                chosen.append(cand)
        for cand in chosen:
            expressions.append(cand)
            texts.add(cand['exp'])
    if multi_object:
        for exp in expressions:
            exp.update(obj_ids=[exp['obj_id']], description=None)
        expressions += _group_expressions(rng, scene, texts, max_multi)

    objects_out = []
    for k, obj in enumerate(objects):
        objects_out.append(
            dict(
                obj_id=obj['obj_id'],
                shape=obj['shape'],
                colour=obj['colour'],
                size=obj['size'],
                texture=obj['texture'],
                depth=obj['depth'],
                visible=[bool(v) for v in visible_area[:, k] > 0],
                radius=obj['radius'],
                centres=obj['centres']))
    return dict(
        frames=frames,
        masks=id_maps,
        objects=objects_out,
        expressions=expressions,
        swap_pairs=swap_index)


# ----------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------
def _dump_json(obj, path: str) -> None:
    """Write JSON atomically (temporary file, then ``os.replace``)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_frames(img_dir: str, names: Sequence[str],
                  frames: np.ndarray) -> None:
    """Write the frames of one video as JPEGs ``<img_dir>/<name>.jpg``."""
    os.makedirs(img_dir, exist_ok=True)
    for name, frame in zip(names, frames):
        bgr = np.ascontiguousarray(frame[..., ::-1])
        img_path = osp.join(img_dir, f'{name}.jpg')
        if not cv2.imwrite(img_path, bgr,
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f'cv2 failed to write {img_path}')


def _write_video(out_dir: str, split: str, vid: str, video: dict,
                 names: Sequence[str], palette: Sequence[int]) -> None:
    """Write the JPEG frames and palette PNG masks of one video."""
    _write_frames(
        osp.join(out_dir, split, 'JPEGImages', vid), names, video['frames'])
    ann_dir = osp.join(out_dir, split, 'Annotations', vid)
    os.makedirs(ann_dir, exist_ok=True)
    for name, mask in zip(names, video['masks']):
        png = Image.fromarray(mask)
        png.putpalette(palette)
        png.save(osp.join(ann_dir, f'{name}.png'))


def rle_track(id_maps: np.ndarray, obj_id: int) -> List[Optional[dict]]:
    """COCO compressed RLEs of one object over a video (MeViS
    ``mask_dict.json`` entry).

    Args:
        id_maps (np.ndarray): Object id per pixel, ``[T, H, W]``.
        obj_id (int): The object's id (palette value) in ``id_maps``.

    Returns:
        list[dict | None]: Per frame ``{"size": [h, w], "counts": str}``
        of the mask ``id_maps[t] == obj_id``, or None where it is empty.
    """
    track: List[Optional[dict]] = []
    for ids in id_maps:
        mask = ids == obj_id
        if not mask.any():
            track.append(None)
            continue
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        track.append({
            'size': [int(v) for v in rle['size']],
            'counts': rle['counts'].decode('ascii')
        })
    return track


def _check_out_dir(out_dir: str, overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``; with it, remove
    only the paths this tool writes (in either layout)."""
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'--out {out_dir!r} exists and is not a '
                              'directory')
    if not osp.isdir(out_dir) or not os.listdir(out_dir):
        return
    listed = ', '.join(
        n if n.endswith('.json') else f'{n}/' for n in _OUTPUTS)
    if not overwrite:
        raise FileExistsError(
            f'--out {out_dir!r} is not empty; pass --overwrite to replace '
            f'the synthetic dataset in it (only {listed} are removed)')
    ours = [n for n in _OUTPUTS if osp.lexists(osp.join(out_dir, n))]
    written_here = osp.isfile(osp.join(out_dir, 'synthetic_rvos_info.json')) \
        or osp.isfile(osp.join(out_dir, _IN_PROGRESS))
    if ours and not written_here:
        raise FileExistsError(
            f'--out {out_dir!r} holds {", ".join(ours)} but no '
            'synthetic_rvos_info.json: it is not a dataset written by this '
            'tool (a real dataset root?), so --overwrite will not delete '
            'them; choose another --out')
    for name in _OUTPUTS + (_IN_PROGRESS, ):
        path = osp.join(out_dir, name)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        elif osp.lexists(path):
            os.remove(path)


def _write_ytvos(out_dir: str, counts: Sequence[int], gen,
                 names: Sequence[str]) -> dict:
    """Write the videos and meta files of the Ref-YouTube-VOS layout.

    Args:
        out_dir (str): Output root.
        counts (Sequence[int]): Videos in train and valid.
        gen (Callable[[int, int], dict]): ``(split_idx, i) -> video`` of
            :func:`generate_video`.
        names (Sequence[str]): Frame names.

    Returns:
        dict: Summary (see :func:`make_synthetic_rvos`).
    """
    palette = davis_palette()
    summary = dict(videos={}, expressions={}, swap_pairs={}, frames=0)
    metas = {}
    for split_idx, (split, count) in enumerate(zip(_SPLITS, counts)):
        meta = {'videos': {}}
        meta_exp = {'videos': {}}
        subjects, infos, swaps = {}, {}, []
        for i in range(count):
            vid = f'{split}_{i:04d}'
            video = gen(split_idx, i)
            _write_video(out_dir, split, vid, video, names, palette)
            meta['videos'][vid] = {
                'objects': {
                    str(o['obj_id']): {
                        'category': o['shape'],
                        'frames':
                        [n for n, v in zip(names, o['visible']) if v]
                    }
                    for o in video['objects']
                }
            }
            exps = video['expressions']
            meta_exp['videos'][vid] = {
                'expressions': {
                    str(j): {
                        'exp': e['exp'],
                        'obj_id': e['obj_id']
                    }
                    for j, e in enumerate(exps)
                },
                'frames': list(names)
            }
            subjects[vid] = {str(j): e['subject'] for j, e in enumerate(exps)}
            infos[vid] = {
                str(j): {k: v
                         for k, v in e.items() if k != 'exp'}
                for j, e in enumerate(exps)
            }
            swaps += [[[vid, str(a)], [vid, str(b)]]
                      for a, b in video['swap_pairs']]
            summary['frames'] += len(names)
        summary['videos'][split] = count
        summary['expressions'][split] = sum(
            len(v['expressions']) for v in meta_exp['videos'].values())
        summary['swap_pairs'][split] = len(swaps)
        metas[split] = (meta, meta_exp, subjects, infos, swaps)
    for split, (meta, meta_exp, subjects, infos, swaps) in metas.items():
        exp_dir = osp.join(out_dir, 'meta_expressions', split)
        _dump_json(meta, osp.join(out_dir, split, 'meta.json'))
        _dump_json(subjects, osp.join(exp_dir, 'subject_labels.json'))
        _dump_json(infos, osp.join(exp_dir, 'expression_info.json'))
        _dump_json({'pairs': swaps}, osp.join(exp_dir, 'swap_pairs.json'))
        _dump_json(meta_exp, osp.join(exp_dir, 'meta_expressions.json'))
    _dump_json({'videos': {}},
               osp.join(out_dir, 'meta_expressions', 'test',
                        'meta_expressions.json'))
    return summary


def _mevis_info(exp: dict, anno: Dict[int, int]) -> dict:
    """``expression_info.json`` entry of one expression (MeViS ids)."""
    ids = [int(i) for i in exp['obj_ids']]
    anchor = exp['anchor_obj_id']
    return dict(
        type=exp['type'],
        obj_ids=[i - 1 for i in ids],
        anno_ids=[anno[i] for i in ids],
        subject=exp['subject'],
        motion=exp['motion'],
        relation=exp['relation'],
        anchor_obj_id=None if anchor is None else int(anchor) - 1,
        anchor_span=exp['anchor_span'],
        description=exp['description'])


def _mevis_video(video: dict, vid: str, names: Sequence[str],
                 first_anno: int, with_gt: bool) -> dict:
    """The MeViS meta entries of one video.

    Args:
        video (dict): Output of :func:`generate_video` with
            ``multi_object=True``.
        vid (str): Video name.
        names (Sequence[str]): Frame names.
        first_anno (int): ``anno_id`` of its first object; the objects
            get consecutive ones.
        with_gt (bool): Whether the split has ground truth (otherwise the
            expressions carry only ``exp``).

    Returns:
        dict: ``meta`` (its ``meta_expressions.json`` entry), ``masks``
        (``mask_dict.json`` entries), ``subjects``, ``infos`` and
        ``swaps`` (empty without GT).
    """
    anno = {
        o['obj_id']: first_anno + k
        for k, o in enumerate(video['objects'])
    }
    exps = {str(j): e for j, e in enumerate(video['expressions'])}
    out = dict(masks={}, subjects={}, infos={}, swaps=[])
    out['meta'] = {
        'expressions': {j: {'exp': e['exp']} for j, e in exps.items()},
        'frames': list(names)
    }
    if not with_gt:
        return out
    for j, e in exps.items():
        info = _mevis_info(e, anno)
        out['meta']['expressions'][j].update(
            obj_id=info['obj_ids'], anno_id=info['anno_ids'])
        out['infos'][j] = info
        out['subjects'][j] = e['subject']
    out['masks'] = {
        str(anno[o['obj_id']]): rle_track(video['masks'], o['obj_id'])
        for o in video['objects']
    }
    out['swaps'] = [[[vid, str(a)], [vid, str(b)]]
                    for a, b in video['swap_pairs']]
    return out


def _write_mevis(out_dir: str, counts: Sequence[int], gen,
                 names: Sequence[str]) -> dict:
    """Write the videos and meta files of the MeViS layout.

    Args:
        out_dir (str): Output root.
        counts (Sequence[int]): Videos in train, valid_u and valid.
        gen (Callable[[int, int], dict]): ``(split_idx, i) -> video`` of
            :func:`generate_video` with ``multi_object=True``.
        names (Sequence[str]): Frame names.

    Returns:
        dict: Summary (see :func:`make_synthetic_rvos`).
    """
    summary = dict(
        videos={},
        expressions={},
        multi_object={},
        motion_only={},
        swap_pairs={},
        frames=0)
    files = {}
    for (split, split_idx, with_gt), count in zip(_MEVIS_SPLITS, counts):
        split_files = dict(
            meta_expressions={'videos': {}},
            mask_dict={},
            subject_labels={},
            expression_info={},
            swap_pairs={'pairs': []})
        exps: List[dict] = []
        for i in range(count):
            vid = f'{split}_{i:04d}'
            video = gen(split_idx, i)
            _write_frames(
                osp.join(out_dir, split, 'JPEGImages', vid), names,
                video['frames'])
            entry = _mevis_video(video, vid, names,
                                 len(split_files['mask_dict']), with_gt)
            split_files['meta_expressions']['videos'][vid] = entry['meta']
            split_files['mask_dict'].update(entry['masks'])
            split_files['subject_labels'][vid] = entry['subjects']
            split_files['expression_info'][vid] = entry['infos']
            split_files['swap_pairs']['pairs'] += entry['swaps']
            exps += video['expressions']
            summary['frames'] += len(names)
        summary['videos'][split] = count
        summary['expressions'][split] = len(exps)
        summary['multi_object'][split] = sum(
            len(e['obj_ids']) >= 2 for e in exps)
        summary['motion_only'][split] = sum(
            e['type'] == 'motion_only' for e in exps)
        if with_gt:
            summary['swap_pairs'][split] = len(
                split_files['swap_pairs']['pairs'])
        else:
            split_files = dict(
                meta_expressions=split_files['meta_expressions'])
        files[split] = split_files
    for split, split_files in files.items():
        # meta_expressions.json last: it marks a complete split
        for name in sorted(split_files, key=lambda n: n == 'meta_expressions'):
            _dump_json(split_files[name],
                       osp.join(out_dir, split, f'{name}.json'))
    return summary


def _num_test(layout: str, num_test: Optional[int]) -> int:
    """Videos of the MeViS ``valid`` split (no GT); 0 for ``ytvos``."""
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    if layout == 'ytvos':
        if num_test:
            raise ValueError('num_test is for the mevis layout only (the '
                             'ytvos test split is empty)')
        return 0
    num_test = MEVIS_DEFAULT_NUM_TEST if num_test is None else num_test
    if num_test < 0:
        raise ValueError(f'num_test must be >= 0, got {num_test}')
    return num_test


def make_synthetic_rvos(out_dir: str,
                        num_train: int = 48,
                        num_valid: int = 12,
                        num_frames: int = 10,
                        size: int = 112,
                        seed: int = 0,
                        min_objects: int = 2,
                        max_objects: int = 4,
                        overwrite: bool = False,
                        layout: str = 'ytvos',
                        num_test: Optional[int] = None) -> dict:
    """Write the synthetic dataset in the Ref-YouTube-VOS or MeViS layout.

    Video ``i`` of a split depends only on ``(seed, split, i)`` and the
    size arguments, so it does not change with the number of videos; the
    rng streams of train / valid (ytvos) are those of train / valid_u
    (mevis). Images (and masks) are written first and the JSON files last
    (each atomically), so an interrupted run leaves no partial meta file.

    Args:
        out_dir (str): Output root (created if needed).
        num_train (int): Training videos (``train_0000``, ...). Defaults
            to 48.
        num_valid (int): Held-out videos with GT (``valid_0000``, ... in
            ytvos, ``valid_u_0000``, ... in mevis). Defaults to 12.
        num_frames (int): Frames per video. Defaults to 10.
        size (int): Frame height and width in pixels. Defaults to 112.
        seed (int): Random seed. Defaults to 0.
        min_objects (int): Fewest objects per video. Defaults to 2.
        max_objects (int): Most objects per video. Defaults to 4.
        overwrite (bool): Replace the dataset in a non-empty ``out_dir``.
            Defaults to False.
        layout (str): ``'ytvos'`` or ``'mevis'`` (see the module
            docstring). Defaults to ``'ytvos'``.
        num_test (int, optional): Videos without GT (``valid_0000``, ...
            in mevis); None means 4 for mevis. Must be 0 or None for
            ytvos. Defaults to None.

    Returns:
        dict: Summary with ``videos``, ``expressions`` and ``swap_pairs``
        (dicts split -> count), for mevis also ``multi_object``
        (expressions with 2 or more referents) and ``motion_only``, and
        ``frames`` (total frame count).
    """
    num_test = _num_test(layout, num_test)
    if num_train < 1 or num_valid < 0:
        raise ValueError('need num_train >= 1 and num_valid >= 0, got '
                         f'{num_train} and {num_valid}')
    if num_frames < 2:
        raise ValueError(f'num_frames must be >= 2, got {num_frames}')
    if not 48 <= size <= 1024:
        raise ValueError(f'size must be in [48, 1024], got {size}')
    _check_out_dir(out_dir, overwrite)
    os.makedirs(out_dir, exist_ok=True)
    # marks the folder as ours until synthetic_rvos_info.json is written,
    # so that --overwrite can clean up after an interrupted run
    open(osp.join(out_dir, _IN_PROGRESS), 'w').close()
    names = frame_names(num_frames)

    def gen(split_idx: int, i: int) -> dict:
        rng = np.random.default_rng([seed, split_idx, i])
        return generate_video(
            rng,
            num_frames,
            size,
            min_objects,
            max_objects,
            multi_object=layout == 'mevis')

    if layout == 'ytvos':
        summary = _write_ytvos(out_dir, (num_train, num_valid), gen, names)
    else:
        summary = _write_mevis(out_dir, (num_train, num_valid, num_test),
                               gen, names)
    args = dict(
        num_train=num_train,
        num_valid=num_valid,
        num_frames=num_frames,
        size=size,
        seed=seed,
        min_objects=min_objects,
        max_objects=max_objects)
    if layout != 'ytvos':  # the ytvos info file stays as it was
        args.update(layout=layout, num_test=num_test)
    _dump_json(
        dict(
            generator='tools/dataset_converters/make_synthetic_rvos.py',
            version=GENERATOR_VERSION,
            args=args,
            summary=summary), osp.join(out_dir, 'synthetic_rvos_info.json'))
    os.remove(osp.join(out_dir, _IN_PROGRESS))
    return summary


def format_summary(summary: dict) -> List[str]:
    """One line per split of a :func:`make_synthetic_rvos` summary."""
    lines = []
    for split, count in summary['videos'].items():
        line = (f'  {split}: {count} videos, '
                f'{summary["expressions"][split]} expressions')
        if 'multi_object' in summary:
            line += (f' ({summary["multi_object"][split]} multi-object, '
                     f'{summary["motion_only"][split]} motion-only)')
        if split in summary['swap_pairs']:
            line += f', {summary["swap_pairs"][split]} swap pairs'
        lines.append(line)
    return lines
