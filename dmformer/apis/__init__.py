# Copyright (c) OpenMMLab. All rights reserved.
from .inference import (build_inference_pipeline, get_test_scale,
                        inference_clip, init_model)
from .subject_labels import (generate_subject_labels, parser_subject_span,
                             vote_subject_chunk)

__all__ = [
    'init_model', 'inference_clip', 'get_test_scale',
    'build_inference_pipeline', 'generate_subject_labels',
    'parser_subject_span', 'vote_subject_chunk'
]
