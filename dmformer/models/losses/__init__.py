# Copyright (c) OpenMMLab. All rights reserved.
from .smoothed_giou_loss import (SmoothedGIoULoss, smoothed_giou,
                                 smoothed_giou_loss)
from .subject_token_loss import SubjectTokenLoss

__all__ = [
    'SmoothedGIoULoss', 'SubjectTokenLoss', 'smoothed_giou',
    'smoothed_giou_loss'
]
