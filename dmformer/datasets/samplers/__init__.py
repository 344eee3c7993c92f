# Copyright (c) OpenMMLab. All rights reserved.
from .same_clip_sampler import SameClipGroupSampler

__all__ = ['SameClipGroupSampler']
