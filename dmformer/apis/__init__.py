# Copyright (c) OpenMMLab. All rights reserved.
from .inference import (build_inference_pipeline, get_test_scale,
                        inference_clip, init_model)

__all__ = [
    'init_model', 'inference_clip', 'get_test_scale',
    'build_inference_pipeline'
]
