# Copyright (c) OpenMMLab. All rights reserved.
"""Region (J) and boundary (F) measures of the DAVIS-2017 benchmark.

Re-implementation of ``davis2017/metrics.py`` and ``davis2017/utils.py`` of
the official toolkit (davisvideochallenge/davis2017-evaluation) that gives
the same numbers (checked to 1e-6 on real masks in
``tests/test_evaluation/test_functional/test_davis_metrics.py``), with three
deliberate differences:

- :func:`disk` replaces ``skimage.morphology.disk`` (same array), so
  scikit-image is not needed;
- :func:`db_statistics` computes the decay bin indices in ``int64`` instead
  of ``uint8``, which overflows in the toolkit for videos of 256 frames or
  more (identical results up to 255 frames);
- bad input raises ``ValueError`` instead of failing an ``assert``.
"""
import math
import warnings
from typing import Optional, Tuple, Union

import cv2
import numpy as np

__all__ = [
    'disk', 'seg2bmap', 'db_eval_iou', 'f_measure', 'db_eval_boundary',
    'db_statistics'
]


def disk(radius: float) -> np.ndarray:
    """Disk-shaped structuring element, identical to
    ``skimage.morphology.disk(radius)`` (``strict_radius=True``, no
    decomposition).

    Args:
        radius (float): Radius of the disk. The toolkit passes a float with
            an integer value (``np.ceil`` output).

    Returns:
        np.ndarray: uint8 array of shape (len(L), len(L)) with
        ``L = np.arange(-radius, radius + 1)``; 1 where
        ``x ** 2 + y ** 2 <= radius ** 2``.
    """
    coords = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(coords, coords)
    return np.array((x**2 + y**2) <= radius**2, dtype=np.uint8)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a binary mask (D. Martin, BSDS 2003).

    A pixel is a boundary pixel if it differs from its east, south or
    south-east neighbour; the last row only looks east, the last column only
    looks south and the bottom-right pixel is never a boundary. The boundary
    is thus offset by half a pixel towards the origin. Same as the toolkit's
    ``_seg2bmap`` with ``width``/``height`` left to their defaults.

    Args:
        seg (np.ndarray): Mask of shape (H, W); non-zero is foreground.

    Returns:
        np.ndarray: bool boundary map of shape (H, W).
    """
    seg = np.asarray(seg).astype(bool)
    if seg.ndim != 2:
        raise ValueError(
            f'seg2bmap expects a 2-D mask, got shape {tuple(seg.shape)}')
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]

    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def _check_shapes(annotation: np.ndarray, segmentation: np.ndarray,
                  void_pixels: Optional[np.ndarray]) -> None:
    if annotation.shape != segmentation.shape:
        raise ValueError(
            f'annotation shape {tuple(annotation.shape)} and segmentation '
            f'shape {tuple(segmentation.shape)} do not match')
    if void_pixels is not None and void_pixels.shape != annotation.shape:
        raise ValueError(
            f'annotation shape {tuple(annotation.shape)} and void_pixels '
            f'shape {tuple(void_pixels.shape)} do not match')


def db_eval_iou(annotation: np.ndarray,
                segmentation: np.ndarray,
                void_pixels: Optional[np.ndarray] = None
                ) -> Union[float, np.ndarray]:
    """Region similarity J (Jaccard index) of the DAVIS benchmark.

    ``J = |S & A & ~V| / |(S | A) & ~V|`` over the last two axes, and
    ``J = 1`` where the union is empty (both masks empty).

    Args:
        annotation (np.ndarray): Ground-truth mask of shape (..., H, W);
            non-zero is foreground.
        segmentation (np.ndarray): Predicted mask, same shape.
        void_pixels (np.ndarray, optional): Pixels to ignore, same shape.

    Returns:
        float | np.ndarray: A float for (H, W) inputs, otherwise a float64
        array of the leading shape (e.g. (T,) for (T, H, W) inputs).
    """
    annotation = np.asarray(annotation)
    segmentation = np.asarray(segmentation)
    if void_pixels is not None:
        void_pixels = np.asarray(void_pixels)
    _check_shapes(annotation, segmentation, void_pixels)
    if annotation.ndim < 2:
        raise ValueError('db_eval_iou expects masks of shape (..., H, W), '
                         f'got shape {tuple(annotation.shape)}')
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    if void_pixels is None:
        keep = np.ones_like(annotation)
    else:
        keep = ~void_pixels.astype(bool)

    inters = np.sum(segmentation & annotation & keep, axis=(-2, -1))
    union = np.sum((segmentation | annotation) & keep, axis=(-2, -1))
    empty = np.isclose(union, 0)
    with np.errstate(divide='ignore', invalid='ignore'):
        j = np.asarray(inters / union, dtype=np.float64)
    j[empty] = 1.
    if j.ndim == 0:
        return float(j)
    return j


def f_measure(foreground_mask: np.ndarray,
              gt_mask: np.ndarray,
              void_pixels: Optional[np.ndarray] = None,
              bound_th: float = 0.008) -> float:
    """Boundary F-measure of one frame (toolkit's ``f_measure``).

    Boundaries are taken with :func:`seg2bmap` after removing void pixels,
    and dilated with ``cv2.dilate`` by :func:`disk` of radius
    ``bound_th`` (if ``bound_th >= 1``) or ``ceil(bound_th * ||(H, W)||)``
    (8 px for 480x854). Precision is the fraction of predicted boundary
    pixels within the dilated GT boundary, recall the converse.
    Edge cases: no predicted boundary and non-empty GT boundary -> P=1,
    R=0; the opposite -> P=0, R=1; both empty -> P=R=1 (F=1); P+R=0 -> F=0.

    Args:
        foreground_mask (np.ndarray): Predicted mask of shape (H, W).
        gt_mask (np.ndarray): Ground-truth mask of shape (H, W).
        void_pixels (np.ndarray, optional): Pixels to ignore, (H, W).
        bound_th (float): Boundary tolerance, fraction of the image
            diagonal if < 1, otherwise pixels. Defaults to 0.008.

    Returns:
        float: The boundary F-measure.
    """
    foreground_mask = np.asarray(foreground_mask)
    gt_mask = np.asarray(gt_mask)
    if void_pixels is not None:
        void_pixels = np.asarray(void_pixels)
    _check_shapes(gt_mask, foreground_mask, void_pixels)
    if foreground_mask.ndim != 2:
        raise ValueError('f_measure expects (H, W) masks, got shape '
                         f'{tuple(foreground_mask.shape)}')
    if void_pixels is None:
        keep = np.ones(foreground_mask.shape, dtype=bool)
    else:
        keep = ~void_pixels.astype(bool)

    bound_pix = bound_th if bound_th >= 1 else math.ceil(
        bound_th * np.linalg.norm(foreground_mask.shape))

    fg_boundary = seg2bmap(foreground_mask.astype(bool) & keep)
    gt_boundary = seg2bmap(gt_mask.astype(bool) & keep)

    kernel = disk(bound_pix)
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), kernel).astype(bool)
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), kernel).astype(bool)

    n_fg = int(np.sum(fg_boundary))
    n_gt = int(np.sum(gt_boundary))
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1., 0.
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0., 1.
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1., 1.
    else:
        precision = np.sum(fg_boundary & gt_dil) / float(n_fg)
        recall = np.sum(gt_boundary & fg_dil) / float(n_gt)

    if precision + recall == 0:
        return 0.
    return float(2 * precision * recall / (precision + recall))


def db_eval_boundary(annotation: np.ndarray,
                     segmentation: np.ndarray,
                     void_pixels: Optional[np.ndarray] = None,
                     bound_th: float = 0.008) -> Union[float, np.ndarray]:
    """Boundary accuracy F of the DAVIS benchmark, frame by frame.

    Args:
        annotation (np.ndarray): Ground-truth mask of shape (H, W) or
            (T, H, W).
        segmentation (np.ndarray): Predicted mask, same shape.
        void_pixels (np.ndarray, optional): Pixels to ignore, same shape.
        bound_th (float): See :func:`f_measure`. Defaults to 0.008.

    Returns:
        float | np.ndarray: A float for (H, W) inputs, a float64 array of
        shape (T,) for (T, H, W) inputs.
    """
    annotation = np.asarray(annotation)
    segmentation = np.asarray(segmentation)
    if void_pixels is not None:
        void_pixels = np.asarray(void_pixels)
    _check_shapes(annotation, segmentation, void_pixels)
    if annotation.ndim == 2:
        return f_measure(segmentation, annotation, void_pixels, bound_th)
    if annotation.ndim != 3:
        raise ValueError('db_eval_boundary does not support masks with '
                         f'{annotation.ndim} dimensions')
    f_res = np.zeros(annotation.shape[0])
    for i in range(annotation.shape[0]):
        void = None if void_pixels is None else void_pixels[i]
        f_res[i] = f_measure(segmentation[i], annotation[i], void, bound_th)
    return f_res


def db_statistics(per_frame: np.ndarray) -> Tuple[float, float, float]:
    """Mean, recall and decay of per-frame J or F values (DAVIS-2017).

    - Mean ``M = nanmean(per_frame)``.
    - Recall ``O = mean(per_frame > 0.5)`` (NaN frames count as misses).
    - Decay ``D = nanmean(bin_0) - nanmean(bin_3)`` with the 4 overlapping
      bins ``per_frame[ids[i]:ids[i + 1] + 1]`` and
      ``ids = round(linspace(1, N, 5) + 1e-10) - 1``. The toolkit casts
      ``ids`` to uint8, which overflows for ``N >= 256`` (``ids[4] + 1``
      wraps to 0 at N = 256, making the last bin empty); here they stay
      int64.

    Args:
        per_frame (np.ndarray): Per-frame values of shape (N,), N >= 1.

    Returns:
        tuple[float, float, float]: ``(M, O, D)``.
    """
    per_frame = np.asarray(per_frame, dtype=np.float64)
    if per_frame.ndim != 1 or per_frame.size == 0:
        raise ValueError('db_statistics expects a non-empty 1-D array of '
                         f'per-frame values, got shape {per_frame.shape}')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=RuntimeWarning)
        mean = np.nanmean(per_frame)
        recall = np.nanmean(per_frame > 0.5)

    num_bins = 4
    ids = np.round(
        np.linspace(1, len(per_frame), num_bins + 1) + 1e-10) - 1
    ids = ids.astype(np.int64)
    bins = [per_frame[ids[i]:ids[i + 1] + 1] for i in range(num_bins)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=RuntimeWarning)
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)
