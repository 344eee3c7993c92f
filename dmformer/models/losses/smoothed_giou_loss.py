# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from dmformer.registry import MODELS


def smoothed_giou(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """GIoU of aligned boxes with the official DMFormer smoothing.

    ``IoU = (inter + eps) / (union + eps)`` and ``GIoU = IoU - (enclose -
    union + eps) / (enclose + eps)``, as the official ``util/box_ops.py``
    computes it. mmdet's ``bbox_overlaps(mode='giou')`` divides by
    ``max(union, eps)`` and ``max(enclose, eps)`` instead, so a zero target
    box (a frame where the object is absent) has IoU 0 there and about
    ``eps / area`` here; boxes of normal size agree to about ``eps``.

    Args:
        pred (Tensor): xyxy boxes, has shape (N, 4).
        target (Tensor): xyxy boxes, has shape (N, 4).
        eps (float): The smoothing constant. Defaults to 1e-6.

    Returns:
        Tensor: GIoU of each pair, has shape (N, ).
    """
    area_pred = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_target = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = area_pred + area_target - inter
    iou = (inter + eps) / (union + eps)
    lt = torch.min(pred[:, :2], target[:, :2])
    rb = torch.max(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    enclose = wh[:, 0] * wh[:, 1]
    return iou - (enclose - union + eps) / (enclose + eps)


@weighted_loss
def smoothed_giou_loss(pred: Tensor,
                       target: Tensor,
                       eps: float = 1e-6) -> Tensor:
    """``1 - smoothed_giou(pred, target)`` per box (see
    :func:`smoothed_giou`)."""
    return 1 - smoothed_giou(pred, target, eps)


@MODELS.register_module()
class SmoothedGIoULoss(nn.Module):
    """GIoU loss with the official DMFormer smoothing of the IoU.

    The official code's choice (its ``util/box_ops.py``); the configs use
    mmdet's ``GIoULoss``, under which the zero box of a frame where the
    object is absent has IoU 0 instead of about ``eps / area``. Same
    arguments and reduction as mmdet's ``GIoULoss``.

    Args:
        eps (float): The smoothing constant. Defaults to 1e-6.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to
            ``'mean'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """The weighted loss of xyxy boxes ``pred`` (N, 4) against
        ``target`` (N, 4), reduced as mmdet's ``GIoULoss``."""
        reduction = reduction_override or self.reduction
        return self.loss_weight * smoothed_giou_loss(
            pred,
            target,
            weight,
            eps=self.eps,
            reduction=reduction,
            avg_factor=avg_factor)
