# Copyright (c) OpenMMLab. All rights reserved.
"""Helpers shared by the RVOS metrics to read data samples."""
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.structures import BaseDataElement

from dmformer.evaluation.functional import (db_eval_boundary, db_eval_iou,
                                            db_statistics)

__all__ = [
    'get_field', 'sample_name', 'get_masks', 'get_frame_ids',
    'score_masks', 'summarize_jf'
]

_MISSING = object()


def get_field(sample: Any, key: str, default: Any = _MISSING) -> Any:
    """Read ``key`` from a data sample given as a dict (what
    :class:`mmengine.evaluator.Evaluator` passes, metainfo flattened) or as
    a :class:`BaseDataElement`.

    Args:
        sample (dict | BaseDataElement): The data sample or a sub-field
            such as ``pred_instances``.
        key (str): Field or metainfo key.
        default (Any): Returned when the key is missing. If not given, a
            missing key raises ``KeyError``.
    """
    if isinstance(sample, BaseDataElement):
        if key in sample:
            return sample.get(key)
    elif isinstance(sample, dict):
        if key in sample:
            return sample[key]
    else:
        raise TypeError('a data sample must be a dict or a BaseDataElement, '
                        f'got {type(sample)}')
    if default is _MISSING:
        raise KeyError(f'data sample has no {key!r}')
    return default


def sample_name(sample: Any) -> str:
    """``'video <video_id> exp <exp_id>'`` for error messages."""
    return (f"video {get_field(sample, 'video_id', '?')} "
            f"exp {get_field(sample, 'exp_id', '?')}")


def get_masks(sample: Any, field: str) -> Optional[np.ndarray]:
    """Masks of ``sample.<field>.masks`` as a bool array.

    Args:
        sample (dict | BaseDataElement): The data sample.
        field (str): ``'pred_instances'`` or ``'gt_instances'``.

    Returns:
        np.ndarray | None: bool array of shape (T, H, W), or None when the
        sample has no such field or the field has no ``masks``.
    """
    instances = get_field(sample, field, None)
    if instances is None:
        return None
    masks = get_field(instances, 'masks', None)
    if masks is None:
        return None
    if hasattr(masks, 'to_ndarray'):  # mmdet BitmapMasks / PolygonMasks
        masks = masks.to_ndarray()
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f'{field}.masks of {sample_name(sample)} must have '
                         f'shape (T, H, W), got {masks.shape}')
    return masks.astype(bool)


def get_frame_ids(sample: Any, num_frames: int) -> List[str]:
    """Frame names from metainfo ``frame_ids`` (checked against the mask
    count), or ``'00000'``, ``'00001'``... when absent."""
    frame_ids = get_field(sample, 'frame_ids', None)
    if frame_ids is None:
        return [f'{t:05d}' for t in range(num_frames)]
    frame_ids = [str(f) for f in frame_ids]
    if len(frame_ids) != num_frames:
        raise ValueError(
            f'{sample_name(sample)}: {len(frame_ids)} frame_ids but '
            f'{num_frames} predicted masks (missing or extra frames)')
    return frame_ids


def score_masks(sample: Any, pred: np.ndarray,
                gt: np.ndarray) -> Dict[str, List[float]]:
    """Per-frame DAVIS J and F of one expression.

    Args:
        sample (dict | BaseDataElement): The sample, for error messages.
        pred (np.ndarray): Predicted masks, bool (T, H, W).
        gt (np.ndarray): GT masks, bool (T, H, W), same shape.

    Returns:
        dict: ``J`` and ``F``, lists of T floats.
    """
    if pred.shape != gt.shape:
        raise ValueError(
            f'{sample_name(sample)}: predicted masks of shape {pred.shape} '
            f'do not match GT masks of shape {gt.shape} (predictions must '
            'be at ori_shape and cover every frame)')
    return dict(
        J=np.atleast_1d(db_eval_iou(gt, pred)).tolist(),
        F=np.atleast_1d(db_eval_boundary(gt, pred)).tolist())


def summarize_jf(results: Sequence[dict]) -> Dict[str, Any]:
    """Merge per-sample J/F records into per-expression and per-video
    scores.

    Records of the same (video_id, exp_id) are merged frame by frame, so a
    video evaluated clip by clip is scored like a whole video. The score of
    an expression is the mean over its frames (DAVIS ``M``); the dataset
    score is the mean over expressions.

    Args:
        results (Sequence[dict]): Records with ``video_id``, ``exp_id``,
            ``frame_ids``, ``J`` and ``F`` (lists of equal length).

    Returns:
        dict: ``per_exp`` ((video_id, exp_id) -> dict(J, F, JF, J_recall,
        F_recall, J_decay, F_decay, num_frames)), ``per_video``
        (video_id -> dict(J, F, JF, num_exps)), and the dataset means
        ``J``, ``F``, ``JF``.
    """
    frames = defaultdict(dict)
    for res in results:
        key = (res['video_id'], res['exp_id'])
        for fid, j, f in zip(res['frame_ids'], res['J'], res['F']):
            if fid in frames[key]:
                raise ValueError(f'frame {fid} of video {key[0]} exp '
                                 f'{key[1]} was evaluated twice')
            frames[key][fid] = (j, f)
    if not frames:
        raise ValueError('no sample was evaluated')
    per_exp = {}
    for key, vals in frames.items():
        ordered = [vals[fid] for fid in sorted(vals)]
        j = np.array([v[0] for v in ordered])
        f = np.array([v[1] for v in ordered])
        j_m, j_r, j_d = db_statistics(j)
        f_m, f_r, f_d = db_statistics(f)
        per_exp[key] = dict(
            J=j_m, F=f_m, JF=(j_m + f_m) / 2, J_recall=j_r, F_recall=f_r,
            J_decay=j_d, F_decay=f_d, num_frames=len(ordered))
    per_video = defaultdict(list)
    for (video_id, _), scores in per_exp.items():
        per_video[video_id].append(scores)
    per_video = {
        vid: dict(
            J=float(np.mean([s['J'] for s in scores])),
            F=float(np.mean([s['F'] for s in scores])),
            JF=float(np.mean([s['JF'] for s in scores])),
            num_exps=len(scores))
        for vid, scores in sorted(per_video.items())
    }
    j_all = float(np.mean([s['J'] for s in per_exp.values()]))
    f_all = float(np.mean([s['F'] for s in per_exp.values()]))
    return dict(
        per_exp=per_exp,
        per_video=per_video,
        J=j_all,
        F=f_all,
        JF=(j_all + f_all) / 2)
