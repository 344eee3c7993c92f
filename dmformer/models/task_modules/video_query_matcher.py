# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from torch import Tensor

from dmformer.registry import TASK_UTILS
from ..losses.smoothed_giou_loss import smoothed_giou


@TASK_UTILS.register_module()
class VideoQueryMatcher:
    """Clip-level matcher choosing one query slot per video.

    Implementation of the ``HungarianMatcher`` of `ReferFormer
    <https://arxiv.org/abs/2201.00487>`_ (``models/matcher.py``) used by
    DMFormer. Each video has exactly one ground-truth object
    tracked over its ``T`` frames; a query *slot* is the same query index in
    every frame. For every video and slot the cost

    ``C = w_cls * class + w_bbox * L1 + w_giou * (-GIoU) + w_mask * focal
    + w_dice * (-dice)``

    is computed and the slot with the smallest cost is chosen (no Hungarian
    assignment is needed for a single target), where

    - ``class``: focal-style cost ``a (1 - p)^g (-log(p + 1e-8)) - (1 - a)
      p^g (-log(1 - p + 1e-8))`` of the target class, averaged over the
      *valid* (object-present) frames only (0 for a video without valid
      frames, where the official code would crash);
    - ``L1`` and ``-GIoU`` between normalised boxes (GIoU on cxcywh -> xyxy),
      averaged over *all* frames (absent frames have an all-zero target);
    - ``focal``: sigmoid focal loss (a = 0.25, g = 2) between the slot's clip
      mask logits and the clip target mask, averaged over all ``T*h*w``
      pixels;
    - ``dice``: ``(2 sum(pg) + 1) / (sum(p) + sum(g) + 1)`` over the clip.

    NOTE: mmdet's match costs (``FocalLossCost``, ``BBoxL1Cost``,
    ``IoUCost``, ``DiceCost``) are not reused: they score all N x M pairs of
    one image from :obj:`InstanceData`, whereas this cost averages
    per-frame costs over (valid) frames of a clip and must be batched over
    videos without a Python loop; reusing them would need a loop over videos
    and frames or a B-fold redundant pairwise computation. Their epsilons
    also differ (1e-12 vs the official 1e-8; ``-log(p + eps)`` vs the exact
    BCE-with-logits of the official mask cost). The GIoU itself is mmdet's
    :func:`bbox_overlaps` (``mode='giou'``, ``is_aligned=True``).

    The matcher is batched over videos: no Python loop and no host sync.

    Args:
        cost_class (float): Weight of the class cost. Defaults to 2.0.
        cost_bbox (float): Weight of the L1 box cost. Defaults to 5.0.
        cost_giou (float): Weight of the GIoU cost. Defaults to 2.0.
        cost_mask (float): Weight of the mask focal cost. Defaults to 2.0.
        cost_dice (float): Weight of the dice cost. Defaults to 5.0.
        focal_alpha (float): Focal alpha for the class and mask costs.
            Defaults to 0.25.
        focal_gamma (float): Focal gamma. Defaults to 2.0.
        class_eps (float): Epsilon inside the logs of the class cost.
            Defaults to 1e-8.
        giou_smooth_eps (float, optional): Use the official smoothed GIoU
            (:func:`~dmformer.models.losses.smoothed_giou`) with this
            constant in the box cost instead of mmdet's
            ``bbox_overlaps``; pair it with ``SmoothedGIoULoss`` as
            ``loss_iou``. Defaults to None (mmdet's GIoU).
    """

    def __init__(self,
                 cost_class: float = 2.,
                 cost_bbox: float = 5.,
                 cost_giou: float = 2.,
                 cost_mask: float = 2.,
                 cost_dice: float = 5.,
                 focal_alpha: float = 0.25,
                 focal_gamma: float = 2.,
                 class_eps: float = 1e-8,
                 giou_smooth_eps: Optional[float] = None) -> None:
        self.cost_class = cost_class
        self.giou_smooth_eps = giou_smooth_eps
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.class_eps = class_eps

    def class_cost(self, cls_scores: Tensor, gt_labels: Tensor,
                   gt_valid: Tensor) -> Tensor:
        """Focal class cost averaged over the valid frames.

        Args:
            cls_scores (Tensor): Logits, has shape (B, T, Q, K).
            gt_labels (Tensor): Long, target class of every video, (B,).
            gt_valid (Tensor): Bool, object presence, (B, T).

        Returns:
            Tensor: Has shape (B, Q).
        """
        b, t, q, _ = cls_scores.shape
        idx = gt_labels.view(b, 1, 1, 1).expand(b, t, q, 1)
        prob = cls_scores.gather(-1, idx).squeeze(-1).sigmoid()  # (B, T, Q)
        a, g, eps = self.focal_alpha, self.focal_gamma, self.class_eps
        neg = (1 - a) * prob.pow(g) * (-(1 - prob + eps).log())
        pos = a * (1 - prob).pow(g) * (-(prob + eps).log())
        valid = gt_valid.to(prob.dtype).unsqueeze(-1)  # (B, T, 1)
        num_valid = valid.sum(1).clamp(min=1)  # (B, 1)
        return ((pos - neg) * valid).sum(1) / num_valid

    def bbox_costs(self, bbox_preds: Tensor, gt_bboxes: Tensor) -> tuple:
        """L1 and negative-GIoU box costs averaged over all frames.

        Args:
            bbox_preds (Tensor): Normalised cxcywh, has shape (B, T, Q, 4).
            gt_bboxes (Tensor): Normalised cxcywh, has shape (B, T, 4).

        Returns:
            tuple[Tensor, Tensor]: L1 cost and -GIoU cost, each (B, Q).
        """
        gt = gt_bboxes.unsqueeze(2).expand_as(bbox_preds)
        cost_l1 = (bbox_preds - gt).abs().sum(-1).mean(1)
        pred_xyxy = bbox_cxcywh_to_xyxy(bbox_preds)
        gt_xyxy = bbox_cxcywh_to_xyxy(gt)
        if self.giou_smooth_eps is None:
            giou = bbox_overlaps(
                pred_xyxy, gt_xyxy, mode='giou', is_aligned=True)
        else:
            giou = smoothed_giou(
                pred_xyxy.reshape(-1, 4), gt_xyxy.reshape(-1, 4),
                self.giou_smooth_eps).view(pred_xyxy.shape[:-1])
        return cost_l1, -giou.mean(1)

    def mask_costs(self, mask_preds: Tensor, gt_masks: Tensor) -> tuple:
        """Sigmoid-focal and negative-dice clip mask costs.

        Args:
            mask_preds (Tensor): Logits, has shape (B, T, Q, h, w).
            gt_masks (Tensor): Binary targets, has shape (B, T, h, w).

        Returns:
            tuple[Tensor, Tensor]: Focal cost (mean over the ``T*h*w``
            pixels) and -dice cost, each (B, Q).
        """
        b, t, q, h, w = mask_preds.shape
        # (B, T, Q, h, w) -> (B, Q, T*h*w)
        pred = mask_preds.permute(0, 2, 1, 3, 4).reshape(b, q, t * h * w)
        gt = gt_masks.to(pred.dtype).reshape(b, 1, t * h * w)
        prob = pred.sigmoid()
        a, g = self.focal_alpha, self.focal_gamma
        focal_pos = a * (1 - prob).pow(g) * F.binary_cross_entropy_with_logits(
            pred, torch.ones_like(pred), reduction='none')
        focal_neg = (1 - a) * prob.pow(g) * \
            F.binary_cross_entropy_with_logits(
                pred, torch.zeros_like(pred), reduction='none')
        cost_focal = (focal_pos * gt + focal_neg * (1 - gt)).mean(-1)
        numerator = 2 * (prob * gt).sum(-1)
        denominator = prob.sum(-1) + gt.sum(-1)
        dice = (numerator + 1) / (denominator + 1)
        return cost_focal, -dice

    def get_cost(self,
                 cls_scores: Tensor,
                 bbox_preds: Tensor,
                 mask_preds: Tensor,
                 gt_bboxes: Tensor,
                 gt_masks: Tensor,
                 gt_valid: Tensor,
                 gt_labels: Optional[Tensor] = None) -> Tensor:
        """Total matching cost of every query slot of every video.

        Args: see :meth:`__call__`.

        Returns:
            Tensor: Has shape (B, Q).
        """
        b, t, q = cls_scores.shape[:3]
        if bbox_preds.shape[:3] != (b, t, q) or \
                mask_preds.shape[:3] != (b, t, q):
            raise ValueError('VideoQueryMatcher: cls_scores, bbox_preds and '
                             'mask_preds must share (B, T, Q), got '
                             f'{tuple(cls_scores.shape)}, '
                             f'{tuple(bbox_preds.shape)}, '
                             f'{tuple(mask_preds.shape)}')
        if gt_masks.shape != (b, t) + tuple(mask_preds.shape[-2:]):
            raise ValueError('VideoQueryMatcher: gt_masks must have shape '
                             f'{(b, t) + tuple(mask_preds.shape[-2:])} '
                             '(sampled at the mask stride), got '
                             f'{tuple(gt_masks.shape)}')
        if gt_labels is None:
            gt_labels = cls_scores.new_zeros(b, dtype=torch.long)
        cost = self.cost_class * self.class_cost(cls_scores, gt_labels,
                                                 gt_valid)
        cost_l1, cost_giou = self.bbox_costs(bbox_preds, gt_bboxes)
        cost_focal, cost_dice = self.mask_costs(mask_preds, gt_masks)
        cost = cost + self.cost_bbox * cost_l1 + self.cost_giou * cost_giou
        cost = cost + self.cost_mask * cost_focal + self.cost_dice * cost_dice
        return cost

    @torch.no_grad()
    def __call__(self,
                 cls_scores: Tensor,
                 bbox_preds: Tensor,
                 mask_preds: Tensor,
                 gt_bboxes: Tensor,
                 gt_masks: Tensor,
                 gt_valid: Tensor,
                 gt_labels: Optional[Tensor] = None) -> Tensor:
        """Choose the query slot of every video.

        Args:
            cls_scores (Tensor): Class logits, has shape (B, T, Q, K).
            bbox_preds (Tensor): Normalised cxcywh boxes, (B, T, Q, 4).
            mask_preds (Tensor): Mask logits, has shape (B, T, Q, h, w).
            gt_bboxes (Tensor): Normalised cxcywh target boxes (all zeros in
                absent frames), has shape (B, T, 4).
            gt_masks (Tensor): Target masks already sampled at the mask
                stride (padded input, stride 4 starting at pixel 2), has
                shape (B, T, h, w).
            gt_valid (Tensor): Bool object presence, has shape (B, T).
            gt_labels (Tensor, optional): Long target class per video, (B,).
                Defaults to class 0 (binary referring).

        Returns:
            Tensor: Long, index of the matched query slot per video, (B,).
        """
        cost = self.get_cost(cls_scores, bbox_preds, mask_preds, gt_bboxes,
                             gt_masks, gt_valid, gt_labels)
        return cost.argmin(-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(cost_class={self.cost_class}, '
                f'cost_bbox={self.cost_bbox}, cost_giou={self.cost_giou}, '
                f'cost_mask={self.cost_mask}, cost_dice={self.cost_dice})')
