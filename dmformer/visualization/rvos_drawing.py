# Copyright (c) OpenMMLab. All rights reserved.
"""Drawing helpers for referring video segmentation results.

All images are uint8 BGR ``(H, W, 3)`` arrays, as read by OpenCV. Every
sentence gets a fixed colour (:data:`PALETTE`, by sentence index) in the
masks, contours, legends and strips, so a reader can tell them apart.
"""
import math
from typing import List, Optional, Sequence

import cv2
import numpy as np

# BGR colours, easy to tell apart on natural and synthetic frames
PALETTE = [(40, 40, 235), (60, 200, 40), (235, 120, 30), (20, 200, 230),
           (200, 60, 200), (200, 200, 40), (0, 128, 255), (128, 0, 255)]
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def sentence_colour(index: int) -> tuple:
    """BGR colour of sentence ``index``."""
    return PALETTE[index % len(PALETTE)]


def upscale_factor(height: int, width: int, min_short_side: int = 360) -> int:
    """Integer factor that brings the short side to at least
    ``min_short_side`` (1 when it already is), so that small frames and
    their legends are readable."""
    short = min(height, width)
    if short <= 0:
        raise ValueError(f'invalid frame size {height} x {width}')
    return max(1, math.ceil(min_short_side / short))


def upscale(image: np.ndarray, factor: int, nearest: bool = False
            ) -> np.ndarray:
    """Resize ``image`` (frame or mask) by an integer ``factor``."""
    if factor == 1:
        return image
    h, w = image.shape[:2]
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC
    return cv2.resize(image, (w * factor, h * factor), interpolation=interp)


def draw_masks(frame: np.ndarray,
               masks: Sequence[np.ndarray],
               colours: Optional[Sequence[tuple]] = None,
               alpha: float = 0.5) -> np.ndarray:
    """Blend masks into a frame, each in its colour, with a contour.

    Args:
        frame (np.ndarray): uint8 BGR ``(H, W, 3)``.
        masks (Sequence[np.ndarray]): bool ``(H, W)`` masks.
        colours (Sequence[tuple], optional): BGR colour per mask. Defaults
            to :func:`sentence_colour` of the mask index.
        alpha (float): Opacity of the fill. Defaults to 0.5.

    Returns:
        np.ndarray: A new uint8 BGR image.
    """
    if colours is None:
        colours = [sentence_colour(i) for i in range(len(masks))]
    out = frame.astype(np.float32)
    for mask, colour in zip(masks, colours):
        if mask.shape != frame.shape[:2]:
            raise ValueError(f'mask of shape {mask.shape} does not match '
                             f'the frame {frame.shape[:2]}')
        out[mask] = out[mask] * (1 - alpha) + np.float32(colour) * alpha
    out = out.astype(np.uint8)
    thickness = max(1, min(frame.shape[:2]) // 200)
    for mask, colour in zip(masks, colours):
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour, thickness)
    return out


def _wrap(text: str, width_px: int, scale: float) -> List[str]:
    """Greedy word wrap of ``text`` to lines of at most ``width_px``."""
    lines, line = [], ''
    for word in text.split():
        cand = f'{line} {word}'.strip()
        if line and cv2.getTextSize(cand, _FONT, scale, 1)[0][0] > width_px:
            lines.append(line)
            line = word
        else:
            line = cand
    return lines + [line] if line else lines


def draw_legend(width: int,
                entries: Sequence[str],
                colours: Optional[Sequence[tuple]] = None,
                font_scale: float = 0.55) -> np.ndarray:
    """A white panel that lists one entry per sentence next to a swatch
    of its colour, word-wrapped to ``width`` pixels.

    Args:
        width (int): Panel width in pixels.
        entries (Sequence[str]): One text per sentence, e.g. the sentence,
            its chosen subject and its score.
        colours (Sequence[tuple], optional): BGR colour per entry.
        font_scale (float): OpenCV font scale (0.55 is about 12 px high).

    Returns:
        np.ndarray: uint8 BGR ``(h, width, 3)`` panel.
    """
    if colours is None:
        colours = [sentence_colour(i) for i in range(len(entries))]
    line_h = int(round(26 * font_scale / 0.55))
    swatch = line_h - 8
    pad = 8
    text_x = pad + swatch + 8
    wrapped = [_wrap(e, width - text_x - pad, font_scale) or ['']
               for e in entries]
    height = pad + sum(len(w) for w in wrapped) * line_h + pad
    panel = np.full((height, width, 3), 255, dtype=np.uint8)
    y = pad
    for lines, colour in zip(wrapped, colours):
        cv2.rectangle(panel, (pad, y + 4), (pad + swatch, y + 4 + swatch),
                      colour, -1)
        for line in lines:
            cv2.putText(panel, line, (text_x, y + line_h - 8), _FONT,
                        font_scale, (20, 20, 20), 1, cv2.LINE_AA)
            y += line_h
    return panel


def frame_with_legend(frame: np.ndarray, masks: Sequence[np.ndarray],
                      entries: Sequence[str],
                      min_short_side: int = 360) -> np.ndarray:
    """The frame, upscaled to a readable size, with every sentence's mask
    in its colour and the legend panel below it.

    Args:
        frame (np.ndarray): uint8 BGR ``(H, W, 3)``.
        masks (Sequence[np.ndarray]): One bool ``(H, W)`` mask per sentence.
        entries (Sequence[str]): One legend text per sentence.
        min_short_side (int): Frames with a shorter short side are
            upscaled by an integer factor. Defaults to 360.

    Returns:
        np.ndarray: uint8 BGR image ``(k*H + legend, k*W, 3)``.
    """
    k = upscale_factor(*frame.shape[:2], min_short_side=min_short_side)
    big = upscale(frame, k)
    big_masks = [upscale(m.astype(np.uint8), k, nearest=True).astype(bool)
                 for m in masks]
    vis = draw_masks(big, big_masks)
    legend = draw_legend(vis.shape[1], entries)
    return np.concatenate([vis, legend], 0)


def make_strip(frames: Sequence[np.ndarray],
               masks: Sequence[Sequence[np.ndarray]],
               titles: Sequence[str],
               frame_ids: Optional[Sequence[str]] = None,
               min_short_side: int = 160) -> np.ndarray:
    """A side-by-side picture: one row per sentence, one column per frame,
    each tile showing only that sentence's mask, with the sentence above
    its row.

    Args:
        frames (Sequence[np.ndarray]): N uint8 BGR frames of one size.
        masks (Sequence[Sequence[np.ndarray]]): ``masks[s][n]`` bool mask of
            sentence s in frame n.
        titles (Sequence[str]): Row title per sentence.
        frame_ids (Sequence[str], optional): Column captions.
        min_short_side (int): Tiles are upscaled to at least this short
            side. Defaults to 160.

    Returns:
        np.ndarray: uint8 BGR image.
    """
    if not frames:
        raise ValueError('make_strip: no frames')
    if len(masks) != len(titles):
        raise ValueError(f'make_strip: {len(masks)} mask rows but '
                         f'{len(titles)} titles')
    k = upscale_factor(*frames[0].shape[:2], min_short_side=min_short_side)
    gap = 6
    tiles_w = len(frames) * (frames[0].shape[1] * k + gap) - gap
    rows = []
    if frame_ids is not None:
        header = np.full((22, tiles_w, 3), 255, dtype=np.uint8)
        for n, fid in enumerate(frame_ids):
            x = n * (frames[0].shape[1] * k + gap) + 4
            cv2.putText(header, f'frame {fid}', (x, 16), _FONT, 0.45,
                        (60, 60, 60), 1, cv2.LINE_AA)
        rows.append(header)
    for s, (row_masks, title) in enumerate(zip(masks, titles)):
        if len(row_masks) != len(frames):
            raise ValueError(f'make_strip: sentence {s} has '
                             f'{len(row_masks)} masks for {len(frames)} '
                             'frames')
        rows.append(draw_legend(tiles_w, [title], [sentence_colour(s)]))
        tiles = []
        for n, (frame, mask) in enumerate(zip(frames, row_masks)):
            big = upscale(frame, k)
            big_mask = upscale(mask.astype(np.uint8), k,
                               nearest=True).astype(bool)
            tiles.append(draw_masks(big, [big_mask], [sentence_colour(s)]))
            if n + 1 < len(frames):
                tiles.append(
                    np.full((big.shape[0], gap, 3), 255, dtype=np.uint8))
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)
