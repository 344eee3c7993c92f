# Copyright (c) OpenMMLab. All rights reserved.
from .dmformer import DMFormer

__all__ = ['DMFormer']
