# Copyright (c) OpenMMLab. All rights reserved.
from .functional import (DAVIS_METRIC_KEYS, davis_palette, db_eval_boundary,
                         db_eval_iou, db_statistics, disk,
                         evaluate_davis_sequences, evaluate_ref_davis,
                         f_measure, load_mask_png, merge_object_masks,
                         save_binary_png, save_palette_png, seg2bmap,
                         write_ref_davis_annotator)
from .metrics import (A2DSentencesMetric, MeViSSubmissionMetric, RefCOCOMetric,
                      RefDAVISMetric, RefYTVOSSubmissionMetric, RVOSJFMetric,
                      zip_folder_atomic)

__all__ = [
    'db_eval_iou', 'db_eval_boundary', 'db_statistics', 'disk', 'f_measure',
    'seg2bmap', 'davis_palette', 'load_mask_png', 'save_binary_png',
    'save_palette_png', 'DAVIS_METRIC_KEYS', 'evaluate_davis_sequences',
    'evaluate_ref_davis', 'merge_object_masks', 'write_ref_davis_annotator',
    'RVOSJFMetric', 'RefYTVOSSubmissionMetric', 'zip_folder_atomic',
    'A2DSentencesMetric', 'RefCOCOMetric', 'RefDAVISMetric',
    'MeViSSubmissionMetric'
]
