# Copyright (c) OpenMMLab. All rights reserved.
from .augment import (CheckValidFrames, ImageToPseudoVideo, NoValidFrameError,
                      VideoPhotoMetricDistortion, VideoRandomFlip,
                      VideoRandomResize, VideoRandomSizeCrop, swap_left_right)
from .formatting import PackRVOSInputs
from .frame_sampling import RVOSFrameSample
from .loading import (LoadMeViSAnnotations, LoadRVOSAnnotations,
                      LoadRVOSFrames, LoadSubjectSpan,
                      decode_coco_segmentation, load_mask_dict)
from .text import CleanCaption, ExtractNounChunks

__all__ = [
    'PackRVOSInputs', 'RVOSFrameSample', 'LoadRVOSAnnotations',
    'LoadMeViSAnnotations', 'decode_coco_segmentation', 'load_mask_dict',
    'LoadRVOSFrames', 'LoadSubjectSpan', 'CleanCaption', 'ExtractNounChunks',
    'CheckValidFrames', 'ImageToPseudoVideo', 'NoValidFrameError',
    'VideoPhotoMetricDistortion', 'VideoRandomFlip', 'VideoRandomResize',
    'VideoRandomSizeCrop', 'swap_left_right'
]
