# Copyright (c) OpenMMLab. All rights reserved.
from .dmformer_head import DMFormerHead
from .subject_perceptron_head import SubjectPerceptronHead

__all__ = ['SubjectPerceptronHead', 'DMFormerHead']
