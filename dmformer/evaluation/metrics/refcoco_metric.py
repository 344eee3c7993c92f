# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from dmformer.registry import METRICS
from .utils import get_masks, sample_name


@METRICS.register_module()
class RefCOCOMetric(BaseMetric):
    """Cumulative and mean IoU of referring image segmentation (RefCOCO,
    RefCOCO+, RefCOCOg), used to validate the image pre-training.

    Follows the LAVT / CRIS evaluation: per sample ``I`` and ``U`` summed
    over all frames of the sample (images are clips of T = 1 frame), IoU
    ``I / U`` (0 when ``U = 0``), and

    - ``cIoU`` = sum(I) / sum(U) over the dataset;
    - ``mIoU`` = mean of the per-sample IoUs;
    - ``P@t`` = fraction of samples with IoU >= t for t in ``iou_thrs``.

    Args:
        iou_thrs (Sequence[float]): Precision thresholds. Defaults to
            (0.5, 0.6, 0.7, 0.8, 0.9).
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): Metric name prefix. Defaults to
            ``'refcoco'``.
        collect_dir (str, optional): See
            :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix: Optional[str] = 'refcoco'

    def __init__(self,
                 iou_thrs: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.iou_thrs = tuple(float(t) for t in iou_thrs)

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Store the intersection and union of every sample.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict | RVOSDataSample]): Samples with
                ``pred_instances.masks`` and ``gt_instances.masks`` of
                shape (T, H, W) (T = 1 for images).
        """
        for sample in data_samples:
            pred = get_masks(sample, 'pred_instances')
            gt = get_masks(sample, 'gt_instances')
            if pred is None or gt is None:
                raise ValueError(f'{sample_name(sample)} needs '
                                 'pred_instances.masks and gt_instances.masks')
            if pred.shape != gt.shape:
                raise ValueError(
                    f'{sample_name(sample)}: predicted masks of shape '
                    f'{pred.shape} do not match GT masks of shape {gt.shape}')
            self.results.append(
                dict(
                    inter=int(np.sum(pred & gt)),
                    union=int(np.sum(pred | gt))))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute cIoU, mIoU and precisions (in percent).

        Returns:
            dict: ``cIoU``, ``mIoU`` and ``P@<t>`` for each threshold.
        """
        if not results:
            raise ValueError('RefCOCOMetric got no sample')
        inters = np.array([r['inter'] for r in results], dtype=np.float64)
        unions = np.array([r['union'] for r in results], dtype=np.float64)
        ious = np.divide(
            inters, unions, out=np.zeros_like(inters), where=unions > 0)
        metrics = {
            'cIoU':
            float(inters.sum() / unions.sum()) *
            100 if unions.sum() > 0 else 0.,
            'mIoU': float(ious.mean()) * 100
        }
        for thr in self.iou_thrs:
            metrics[f'P@{thr:g}'] = float(np.mean(ious >= thr)) * 100
        return metrics
