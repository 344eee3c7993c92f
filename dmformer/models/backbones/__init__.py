# Copyright (c) OpenMMLab. All rights reserved.
from .glip_swin import GLIPSwinTransformer

__all__ = ['GLIPSwinTransformer']
