# Copyright (c) OpenMMLab. All rights reserved.
from .a2d_sentences_metric import A2DSentencesMetric
from .mevis_metric import MeViSSubmissionMetric
from .ref_davis_metric import RefDAVISMetric
from .ref_ytvos_metric import RefYTVOSSubmissionMetric, zip_folder_atomic
from .refcoco_metric import RefCOCOMetric
from .rvos_jf_metric import RVOSJFMetric

__all__ = [
    'RVOSJFMetric', 'RefYTVOSSubmissionMetric', 'zip_folder_atomic',
    'A2DSentencesMetric', 'RefCOCOMetric', 'RefDAVISMetric',
    'MeViSSubmissionMetric'
]
