# Copyright (c) OpenMMLab. All rights reserved.
from .inference import get_test_scale, inference_clip, init_model

__all__ = ['init_model', 'inference_clip', 'get_test_scale']
