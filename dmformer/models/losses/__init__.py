# Copyright (c) OpenMMLab. All rights reserved.
from .subject_token_loss import SubjectTokenLoss

__all__ = ['SubjectTokenLoss']
