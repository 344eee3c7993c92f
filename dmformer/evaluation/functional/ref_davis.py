# Copyright (c) OpenMMLab. All rights reserved.
"""Ref-DAVIS17 protocol of ReferFormer: one result folder per annotator,
scored with the DAVIS-2017 J&F, reported as the mean over annotators."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from .davis_metrics import db_eval_boundary, db_eval_iou, db_statistics
from .mask_io import load_mask_png, save_palette_png

__all__ = [
    'merge_object_masks', 'write_ref_davis_annotator',
    'evaluate_davis_sequences', 'evaluate_ref_davis', 'DAVIS_METRIC_KEYS'
]

#: Columns of the toolkit's ``global_results-<set>.csv``.
DAVIS_METRIC_KEYS = ('J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean',
                     'F-Recall', 'F-Decay')


def merge_object_masks(obj_masks: np.ndarray,
                       obj_ids: Sequence[int],
                       mask_thr: float = 0.5,
                       bg_score: float = 0.1) -> np.ndarray:
    """Merge the per-object predictions of one annotator into a label map.

    As in ReferFormer's ``inference_davis.py``: probabilities below
    ``mask_thr`` are zeroed, a constant background score ``bg_score`` is
    prepended and every pixel takes the argmax. Ties go to the earlier
    entry (background first), like ``torch.argmax``; so with boolean masks
    overlapping pixels go to the first listed object.

    Args:
        obj_masks (np.ndarray): Probabilities in [0, 1] or boolean masks of
            shape (K, T, H, W), one row per object.
        obj_ids (Sequence[int]): The K palette ids (1..255) to write for the
            objects, in the order of ``obj_masks``.
        mask_thr (float): Probability threshold. Defaults to 0.5.
        bg_score (float): Background score. Defaults to 0.1.

    Returns:
        np.ndarray: uint8 label map of shape (T, H, W), 0 = background.
    """
    obj_masks = np.asarray(obj_masks)
    if obj_masks.ndim != 4:
        raise ValueError('obj_masks must have shape (K, T, H, W), got '
                         f'{obj_masks.shape}')
    obj_ids = [int(i) for i in obj_ids]
    if len(obj_ids) != obj_masks.shape[0]:
        raise ValueError(f'got {len(obj_ids)} obj_ids for '
                         f'{obj_masks.shape[0]} object masks')
    if any(i < 1 or i > 255 for i in obj_ids) or \
            len(set(obj_ids)) != len(obj_ids):
        raise ValueError(
            f'obj_ids must be distinct ints in [1, 255], got {obj_ids}')
    scores = obj_masks.astype(np.float32)
    scores[scores < mask_thr] = 0.
    # (K, T, H, W) -> (K + 1, T, H, W), background first
    background = np.full((1, ) + scores.shape[1:], bg_score, np.float32)
    winner = np.argmax(np.concatenate([background, scores]), axis=0)
    lut = np.array([0] + obj_ids, dtype=np.uint8)
    return lut[winner]


def write_ref_davis_annotator(out_dir: str,
                              anno_id: int,
                              video_id: str,
                              label_maps: np.ndarray,
                              frame_names: Optional[Sequence[str]] = None
                              ) -> List[str]:
    """Write the palette PNGs of one video for one annotator.

    Files are ``<out_dir>/anno_{anno_id}/<video_id>/<name>.png`` where
    ``name`` is ``f'{t:05d}'`` for frame index ``t`` (ReferFormer) unless
    ``frame_names`` is given.

    Args:
        out_dir (str): Root of the result folders.
        anno_id (int): Annotator index (0..3 for Ref-DAVIS17).
        video_id (str): Sequence name.
        label_maps (np.ndarray): uint8 labels of shape (T, H, W).
        frame_names (Sequence[str], optional): T file stems.

    Returns:
        list[str]: The written paths.
    """
    label_maps = np.asarray(label_maps)
    if label_maps.ndim != 3:
        raise ValueError(f'label_maps of video {video_id} must have shape '
                         f'(T, H, W), got {label_maps.shape}')
    num_frames = label_maps.shape[0]
    if frame_names is None:
        frame_names = [f'{t:05d}' for t in range(num_frames)]
    elif len(frame_names) != num_frames:
        raise ValueError(f'video {video_id}: {len(frame_names)} frame names '
                         f'for {num_frames} label maps')
    folder = osp.join(out_dir, f'anno_{anno_id}', video_id)
    paths = []
    for name, label_map in zip(frame_names, label_maps):
        path = osp.join(folder, f'{name}.png')
        save_palette_png(label_map, path)
        paths.append(path)
    return paths


def _frame_names(folder: str) -> List[str]:
    if not osp.isdir(folder):
        raise FileNotFoundError(f'annotation folder not found: {folder}')
    names = sorted(f[:-4] for f in os.listdir(folder) if f.endswith('.png'))
    if not names:
        raise FileNotFoundError(f'no PNG masks in {folder}')
    return names


def evaluate_davis_sequences(gt_root: str,
                             res_root: str,
                             sequences: Optional[Sequence[str]] = None
                             ) -> Dict:
    """DAVIS-2017 J&F of a result folder, objects matched by id.

    Follows the toolkit's unsupervised evaluation (all frames kept, label
    255 of the GT is background, the number of GT objects is the largest
    label of the first GT frame, a missing result object is an empty mask,
    statistics per object then the mean over all objects) except that
    result object ``k`` is scored against GT object ``k`` instead of being
    Hungarian-matched. Referring segmentation names the object of every
    expression, so the result ids are the GT ids already and no matching is
    needed; result ids above the GT count are ignored.

    Args:
        gt_root (str): Folder with ``<seq>/<frame>.png`` GT palette PNGs
            (e.g. ``DAVIS/Annotations_unsupervised/480p``).
        res_root (str): Folder with ``<seq>/<frame>.png`` result PNGs for
            the same frame names.
        sequences (Sequence[str], optional): Sequences to score. Defaults
            to every folder of ``gt_root``.

    Returns:
        dict: The 7 keys of :data:`DAVIS_METRIC_KEYS` (floats in [0, 1],
        decay may be negative) and ``per_object``, a dict
        ``'<seq>_<k>' -> dict(J=(M, R, D), F=(M, R, D))``.

    Raises:
        FileNotFoundError: Missing GT folder or result PNG (named).
        ValueError: Result and GT frames of different sizes (named).
    """
    if sequences is None:
        if not osp.isdir(gt_root):
            raise FileNotFoundError(f'GT folder not found: {gt_root}')
        sequences = sorted(
            d for d in os.listdir(gt_root) if osp.isdir(osp.join(gt_root, d)))
    if len(sequences) == 0:
        raise ValueError(f'no sequences to evaluate in {gt_root}')
    per_object = {}
    for seq in sequences:
        names = _frame_names(osp.join(gt_root, seq))
        gt = np.stack(
            [load_mask_png(osp.join(gt_root, seq, f'{n}.png')) for n in names])
        gt[gt == 255] = 0
        res = []
        for n, gt_frame in zip(names, gt):
            path = osp.join(res_root, seq, f'{n}.png')
            frame = load_mask_png(path)
            if frame.shape != gt_frame.shape:
                raise ValueError(f'result {path} has shape {frame.shape} '
                                 f'but the GT frame has {gt_frame.shape}')
            res.append(frame)
        res = np.stack(res)
        num_objects = int(gt[0].max())
        for k in range(1, num_objects + 1):
            j = db_eval_iou(gt == k, res == k)
            f = db_eval_boundary(gt == k, res == k)
            per_object[f'{seq}_{k}'] = dict(
                J=db_statistics(j), F=db_statistics(f))
    if not per_object:
        raise ValueError(f'no GT object in the first frames of {sequences}')
    j_stats = np.array([v['J'] for v in per_object.values()])
    f_stats = np.array([v['F'] for v in per_object.values()])
    j_mean, j_recall, j_decay = j_stats.mean(0).tolist()
    f_mean, f_recall, f_decay = f_stats.mean(0).tolist()
    return {
        'J&F-Mean': (j_mean + f_mean) / 2,
        'J-Mean': j_mean,
        'J-Recall': j_recall,
        'J-Decay': j_decay,
        'F-Mean': f_mean,
        'F-Recall': f_recall,
        'F-Decay': f_decay,
        'per_object': per_object
    }


def evaluate_ref_davis(gt_root: str,
                       pred_root: str,
                       num_annotators: int = 4,
                       sequences: Optional[Sequence[str]] = None) -> Dict:
    """Score every ``<pred_root>/anno_{a}`` folder and average them.

    ReferFormer runs the DAVIS evaluation once per annotator folder and
    reports the mean of the 4 J&F values (wjn922/ReferFormer#30).

    Args:
        gt_root (str): GT folder, see :func:`evaluate_davis_sequences`.
        pred_root (str): Folder holding ``anno_0`` .. ``anno_{n-1}``.
        num_annotators (int): Number of annotator folders. Defaults to 4.
        sequences (Sequence[str], optional): Sequences to score.

    Returns:
        dict: ``anno_{a}`` -> result of :func:`evaluate_davis_sequences`
        for every annotator, and ``mean`` -> the mean of each of the 7
        :data:`DAVIS_METRIC_KEYS` over annotators.
    """
    if num_annotators < 1:
        raise ValueError(f'num_annotators must be >= 1, got {num_annotators}')
    results = {}
    for a in range(num_annotators):
        results[f'anno_{a}'] = evaluate_davis_sequences(
            gt_root, osp.join(pred_root, f'anno_{a}'), sequences)
    results['mean'] = {
        key: float(np.mean([results[f'anno_{a}'][key]
                            for a in range(num_annotators)]))
        for key in DAVIS_METRIC_KEYS
    }
    return results
