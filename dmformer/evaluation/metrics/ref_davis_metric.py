# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp
import shutil
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from dmformer.evaluation.functional import (DAVIS_METRIC_KEYS,
                                            evaluate_ref_davis,
                                            merge_object_masks,
                                            write_ref_davis_annotator)
from dmformer.registry import METRICS
from .utils import get_field, get_frame_ids, get_masks, sample_name


@METRICS.register_module()
class RefDAVISMetric(BaseMetric):
    """Ref-DAVIS17 protocol of ReferFormer (4 annotators).

    Each sample is one (video, object, annotator) expression. While
    processing, its prediction is cached on disk under
    ``<outfile_prefix>/.ref_davis_cache``. :meth:`compute_metrics` then, for
    every (video, annotator), merges the objects with
    :func:`~dmformer.evaluation.functional.merge_object_masks` (argmax over
    a 0.1 background and the object probabilities zeroed below 0.5), writes
    palette PNGs ``<outfile_prefix>/anno_{a}/<video>/<frame>.png`` and, if
    ``gt_root`` is given, scores each annotator folder with the DAVIS-2017
    J&F (:func:`~dmformer.evaluation.functional.evaluate_ref_davis`: per
    object, all frames, result id k scored against GT id k without
    Hungarian matching since each expression names its object).

    The annotator of a sample is its metainfo ``anno_id`` if present,
    otherwise ``int(exp_id) % num_annotators`` (ReferFormer's expression
    order ``exp_id = obj_index * 4 + anno_id``). The palette id written for
    a sample is its metainfo ``obj_id``, which must be the GT palette id.
    ``pred_instances.mask_probs`` (float (T, H, W)) is used for the argmax
    when present, otherwise the boolean ``pred_instances.masks``. With
    several ranks ``outfile_prefix`` must be on a shared file system.

    Args:
        outfile_prefix (str): Output folder of the ``anno_{a}`` folders.
        gt_root (str, optional): ``DAVIS/Annotations_unsupervised/480p``;
            None only writes the PNGs.
        num_annotators (int): Defaults to 4.
        mask_thr (float): Probability threshold. Defaults to 0.5.
        bg_score (float): Background score of the argmax. Defaults to 0.1.
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): Metric name prefix. Defaults to
            ``'ref_davis'``.
        collect_dir (str, optional): See
            :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix: Optional[str] = 'ref_davis'

    def __init__(self,
                 outfile_prefix: str,
                 gt_root: Optional[str] = None,
                 num_annotators: int = 4,
                 mask_thr: float = 0.5,
                 bg_score: float = 0.1,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if num_annotators < 1:
            raise ValueError(
                f'num_annotators must be >= 1, got {num_annotators}')
        self.outfile_prefix = outfile_prefix
        self.gt_root = gt_root
        self.num_annotators = num_annotators
        self.mask_thr = mask_thr
        self.bg_score = bg_score

    @property
    def cache_dir(self) -> str:
        """``<outfile_prefix>/.ref_davis_cache`` (follows
        ``outfile_prefix``)."""
        return osp.join(self.outfile_prefix, '.ref_davis_cache')

    def _anno_id(self, sample) -> int:
        anno_id = get_field(sample, 'anno_id', None)
        if anno_id is None:
            exp_id = get_field(sample, 'exp_id')
            try:
                anno_id = int(exp_id) % self.num_annotators
            except ValueError as e:
                raise ValueError(
                    f'{sample_name(sample)}: no anno_id in metainfo and '
                    f'exp_id {exp_id!r} is not an integer') from e
        anno_id = int(anno_id)
        if not 0 <= anno_id < self.num_annotators:
            raise ValueError(f'{sample_name(sample)}: anno_id {anno_id} not '
                             f'in [0, {self.num_annotators})')
        return anno_id

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Cache the prediction of every sample.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict | RVOSDataSample]): Samples with
                ``pred_instances.masks`` and metainfo ``video_id``,
                ``exp_id``, ``obj_id`` (and optionally ``anno_id``,
                ``frame_ids``).
        """
        for sample in data_samples:
            masks = get_masks(sample, 'pred_instances')
            if masks is None:
                raise ValueError(
                    f'{sample_name(sample)} has no pred_instances.masks')
            probs = get_field(
                get_field(sample, 'pred_instances'), 'mask_probs', None)
            if probs is not None:
                probs = np.asarray(
                    probs.detach().cpu() if hasattr(probs, 'detach') else
                    probs, dtype=np.float16)
                if probs.shape != masks.shape:
                    raise ValueError(
                        f'{sample_name(sample)}: mask_probs of shape '
                        f'{probs.shape} do not match masks {masks.shape}')
            video_id = str(get_field(sample, 'video_id'))
            obj_id = int(get_field(sample, 'obj_id'))
            anno_id = self._anno_id(sample)
            frame_ids = get_frame_ids(sample, masks.shape[0])
            path = osp.join(self.cache_dir, video_id,
                            f'anno_{anno_id}_obj_{obj_id}.npz')
            os.makedirs(osp.dirname(path), exist_ok=True)
            if probs is not None:
                np.savez_compressed(path, probs=probs)
            else:
                np.savez_compressed(
                    path, bits=np.packbits(masks), shape=masks.shape)
            self.results.append(
                dict(
                    video_id=video_id,
                    obj_id=obj_id,
                    anno_id=anno_id,
                    frame_ids=frame_ids,
                    path=path))

    @staticmethod
    def _load(path: str) -> np.ndarray:
        if not osp.isfile(path):
            raise FileNotFoundError(f'cached prediction not found: {path}')
        with np.load(path) as data:
            if 'probs' in data:
                return data['probs'].astype(np.float32)
            shape = tuple(data['shape'])
            bits = np.unpackbits(data['bits'], count=int(np.prod(shape)))
            return bits.reshape(shape).astype(np.float32)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Write the annotator folders and score them.

        Returns:
            dict: Empty without ``gt_root``; otherwise ``anno_{a}/J&F``,
            ``anno_{a}/J``, ``anno_{a}/F`` for every annotator and the mean
            over annotators of the 7 DAVIS columns (``J&F-Mean``,
            ``J-Mean``, ``J-Recall``, ``J-Decay``, ``F-Mean``,
            ``F-Recall``, ``F-Decay``), in percent.
        """
        if not results:
            raise ValueError('RefDAVISMetric got no sample')
        groups = defaultdict(dict)
        for r in results:
            key = (r['video_id'], r['anno_id'])
            if r['obj_id'] in groups[key]:
                raise ValueError(
                    f"video {r['video_id']} annotator {r['anno_id']}: "
                    f"object {r['obj_id']} predicted twice")
            groups[key][r['obj_id']] = r
        videos = sorted({v for v, _ in groups})
        for video_id in videos:
            for anno_id in range(self.num_annotators):
                if (video_id, anno_id) not in groups:
                    raise ValueError(f'video {video_id} has no prediction '
                                     f'for annotator {anno_id}')
        for (video_id, anno_id), objs in sorted(groups.items()):
            obj_ids = sorted(objs)
            frame_ids = objs[obj_ids[0]]['frame_ids']
            for o in obj_ids:
                if objs[o]['frame_ids'] != frame_ids:
                    raise ValueError(
                        f'video {video_id} annotator {anno_id}: object {o} '
                        'was predicted on other frames than object '
                        f'{obj_ids[0]}')
            # K x (T, H, W) -> (K, T, H, W)
            probs = np.stack([self._load(objs[o]['path']) for o in obj_ids])
            label_maps = merge_object_masks(probs, obj_ids, self.mask_thr,
                                            self.bg_score)
            write_ref_davis_annotator(self.outfile_prefix, anno_id,
                                      video_id, label_maps, frame_ids)
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        logger = MMLogger.get_current_instance()
        logger.info(f'Ref-DAVIS results written to {self.outfile_prefix}')
        if self.gt_root is None:
            return {}
        res = evaluate_ref_davis(self.gt_root, self.outfile_prefix,
                                 self.num_annotators, videos)
        metrics = {}
        lines = []
        for a in range(self.num_annotators):
            r = res[f'anno_{a}']
            metrics[f'anno_{a}/J&F'] = r['J&F-Mean'] * 100
            metrics[f'anno_{a}/J'] = r['J-Mean'] * 100
            metrics[f'anno_{a}/F'] = r['F-Mean'] * 100
            lines.append(f"anno_{a}: J&F {r['J&F-Mean'] * 100:.2f} "
                         f"J {r['J-Mean'] * 100:.2f} "
                         f"F {r['F-Mean'] * 100:.2f}")
        for key in DAVIS_METRIC_KEYS:
            metrics[key] = res['mean'][key] * 100
        logger.info('Ref-DAVIS17 per annotator:\n' + '\n'.join(lines))
        return metrics
