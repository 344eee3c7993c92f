# Copyright (c) OpenMMLab. All rights reserved.
from .augment import (CheckValidFrames, ImageToPseudoVideo, NoValidFrameError,
                      VideoPhotoMetricDistortion, VideoRandomFlip,
                      VideoRandomResize, VideoRandomSizeCrop, swap_left_right)
from .formatting import PackRVOSInputs
from .frame_sampling import A2DFrameSample, RVOSFrameSample
from .loading import (LoadA2DAnnotations, LoadMeViSAnnotations,
                      LoadRefCOCOAnnotations, LoadRVOSAnnotations,
                      LoadRVOSFrames, LoadRVOSFramesFromNDArray,
                      LoadSubjectSpan, decode_coco_segmentation,
                      load_a2d_instance_masks, load_jhmdb_puppet_mask,
                      load_mask_dict)
from .text import CleanCaption, ExtractNounChunks

__all__ = [
    'PackRVOSInputs', 'RVOSFrameSample', 'A2DFrameSample',
    'LoadRVOSAnnotations', 'LoadMeViSAnnotations', 'LoadA2DAnnotations',
    'LoadRefCOCOAnnotations', 'decode_coco_segmentation', 'load_mask_dict',
    'load_a2d_instance_masks', 'load_jhmdb_puppet_mask', 'LoadRVOSFrames',
    'LoadRVOSFramesFromNDArray', 'LoadSubjectSpan', 'CleanCaption',
    'ExtractNounChunks', 'CheckValidFrames', 'ImageToPseudoVideo',
    'NoValidFrameError', 'VideoPhotoMetricDistortion', 'VideoRandomFlip',
    'VideoRandomResize', 'VideoRandomSizeCrop', 'swap_left_right'
]
