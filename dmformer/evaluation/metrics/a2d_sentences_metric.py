# Copyright (c) OpenMMLab. All rights reserved.
import contextlib
import io
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from dmformer.registry import METRICS
from .utils import get_field, get_masks, sample_name


def _annotated_indices(sample) -> List[int]:
    """Indices of the annotated frames of a clip: metainfo ``valid_indices``
    if present, otherwise the frames where ``gt_instances.valid`` is True.
    """
    indices = get_field(sample, 'valid_indices', None)
    if indices is None:
        gt = get_field(sample, 'gt_instances', None)
        valid = None if gt is None else get_field(gt, 'valid', None)
        if valid is None:
            raise ValueError(
                f'{sample_name(sample)}: cannot find the annotated frame, '
                'set metainfo valid_indices or gt_instances.valid')
        valid = np.asarray(
            valid.cpu() if hasattr(valid, 'cpu') else valid).astype(bool)
        indices = np.flatnonzero(valid)
    indices = [int(i) for i in np.asarray(indices).reshape(-1)]
    if not indices:
        raise ValueError(f'{sample_name(sample)} has no annotated frame')
    return indices


@METRICS.register_module()
class A2DSentencesMetric(BaseMetric):
    """A2D-Sentences / JHMDB-Sentences metric of ReferFormer.

    Each clip is scored on its annotated frame(s), chosen by metainfo
    ``valid_indices`` or by ``gt_instances.valid``. Per annotated frame the
    IoU of ReferFormer's ``compute_iou`` is used,
    ``(I + 1e-6) / (U + 1e-6)`` (so two empty masks give 1), and:

    - ``overall_iou`` = sum(I) / sum(U) over all frames;
    - ``mean_iou`` = mean of the per-frame IoUs;
    - ``P@t`` = fraction of frames with IoU **>** t for t in ``iou_thrs``;
    - ``mAP`` (IoU 0.5:0.95), ``AP50``, ``AP75``, ``AP_s``, ``AP_m``,
      ``AP_l``: COCO ``segm`` AP of pycocotools' ``COCOeval`` with one GT
      and the predicted mask (scored by ``pred_instances.scores``) per
      annotated frame, as ReferFormer's ``evaluate_a2d``. ReferFormer ranks
      all its queries there; the predictions of this repo keep the chosen
      query only, so AP is computed from that one detection per frame.

    Args:
        iou_thrs (Sequence[float]): Thresholds of the precision.
            Defaults to ReferFormer's (0.5, 0.6, 0.7, 0.8, 0.9).
        with_map (bool): Compute the COCO AP. Defaults to True.
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): Metric name prefix. Defaults to ``'a2d'``.
        collect_dir (str, optional): See
            :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix: Optional[str] = 'a2d'

    def __init__(self,
                 iou_thrs: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9),
                 with_map: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.iou_thrs = tuple(float(t) for t in iou_thrs)
        self.with_map = with_map

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Store intersection, union and RLEs of every annotated frame.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict | RVOSDataSample]): Samples with
                ``pred_instances.masks`` (and ``scores``),
                ``gt_instances.masks`` and the annotated frame indices.
        """
        from pycocotools import mask as mask_utils
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
            scores = get_field(
                get_field(sample, 'pred_instances'), 'scores', None)
            if scores is not None:
                scores = np.asarray(
                    scores.cpu() if hasattr(scores, 'cpu') else scores,
                    dtype=np.float64).reshape(-1)
            for idx in _annotated_indices(sample):
                if not 0 <= idx < gt.shape[0]:
                    raise ValueError(
                        f'{sample_name(sample)}: annotated frame index {idx} '
                        f'out of range for {gt.shape[0]} frames')
                inter = int(np.sum(pred[idx] & gt[idx]))
                union = int(np.sum(pred[idx] | gt[idx]))
                record = dict(
                    name=f'{sample_name(sample)} frame {idx}',
                    inter=inter,
                    union=union,
                    score=1. if scores is None else float(scores[idx]))
                if self.with_map:
                    record['gt_rle'] = mask_utils.encode(
                        np.asfortranarray(gt[idx].astype(np.uint8)))
                    record['pred_rle'] = mask_utils.encode(
                        np.asfortranarray(pred[idx].astype(np.uint8)))
                self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the IoU, precision and AP metrics (in percent).

        Returns:
            dict: ``overall_iou``, ``mean_iou``, ``P@<t>`` for each
            threshold and, with ``with_map``, ``mAP``, ``AP50``, ``AP75``,
            ``AP_s``, ``AP_m``, ``AP_l``.
        """
        if not results:
            raise ValueError('A2DSentencesMetric got no sample')
        eps = 1e-6
        inters = np.array([r['inter'] for r in results], dtype=np.float64)
        unions = np.array([r['union'] for r in results], dtype=np.float64)
        ious = (inters + eps) / (unions + eps)
        metrics = {}
        for thr in self.iou_thrs:
            metrics[f'P@{thr:g}'] = float(np.mean(ious > thr)) * 100
        total_union = unions.sum()
        metrics['overall_iou'] = float(
            inters.sum() / total_union) * 100 if total_union > 0 else 100.
        metrics['mean_iou'] = float(ious.mean()) * 100
        if self.with_map:
            metrics.update(_coco_segm_ap(results))
        return metrics


def _coco_segm_ap(results: List[dict]) -> Dict[str, float]:
    """COCO ``segm`` AP with one GT and one prediction per record."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    for i, r in enumerate(results):
        gt_rle = dict(r['gt_rle'])
        h, w = gt_rle['size']
        images.append(dict(id=i, height=h, width=w))
        annotations.append(
            dict(
                id=i + 1,
                image_id=i,
                category_id=1,
                segmentation=gt_rle,
                area=float(mask_utils.area(gt_rle)),
                bbox=mask_utils.toBbox(gt_rle).tolist(),
                iscrowd=0))
        detections.append(
            dict(
                image_id=i,
                category_id=1,
                segmentation=dict(r['pred_rle']),
                score=r['score']))
    coco_gt = COCO()
    coco_gt.dataset = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=1, name='object')])
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        coco_eval = COCOeval(coco_gt, coco_dt, iouType='segm')
        coco_eval.evaluate()
        coco_eval.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            coco_eval.summarize()
    MMLogger.get_current_instance().info('A2D COCO segm AP:\n' +
                                         summary.getvalue())
    names = ('mAP', 'AP50', 'AP75', 'AP_s', 'AP_m', 'AP_l')
    return {
        name: float(v) * 100
        for name, v in zip(names, coco_eval.stats[:6])
    }
