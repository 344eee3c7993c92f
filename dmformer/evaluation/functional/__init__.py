# Copyright (c) OpenMMLab. All rights reserved.
from .davis_metrics import (db_eval_boundary, db_eval_iou, db_statistics, disk,
                            f_measure, seg2bmap)
from .mask_io import (davis_palette, load_mask_png, save_binary_png,
                      save_palette_png)
from .ref_davis import (DAVIS_METRIC_KEYS, evaluate_davis_sequences,
                        evaluate_ref_davis, merge_object_masks,
                        write_ref_davis_annotator)

__all__ = [
    'db_eval_iou', 'db_eval_boundary', 'db_statistics', 'disk', 'f_measure',
    'seg2bmap', 'davis_palette', 'load_mask_png', 'save_binary_png',
    'save_palette_png', 'DAVIS_METRIC_KEYS', 'evaluate_davis_sequences',
    'evaluate_ref_davis', 'merge_object_masks', 'write_ref_davis_annotator'
]
