# Copyright (c) OpenMMLab. All rights reserved.
from .category_seg_head import CategorySegHead
from .dmformer_head import DMFormerHead
from .referent_contrast_head import ReferentContrastHead
from .subject_perceptron_head import SubjectPerceptronHead

__all__ = ['SubjectPerceptronHead', 'DMFormerHead', 'ReferentContrastHead',
           'CategorySegHead']
