# Copyright (c) OpenMMLab. All rights reserved.
from .formatting import PackRVOSInputs
from .frame_sampling import RVOSFrameSample
from .loading import LoadRVOSAnnotations, LoadRVOSFrames, LoadSubjectSpan
from .text import CleanCaption, ExtractNounChunks
from .augment import (CheckValidFrames, ImageToPseudoVideo, NoValidFrameError,
                      VideoPhotoMetricDistortion, VideoRandomFlip,
                      VideoRandomResize, VideoRandomSizeCrop, swap_left_right)

__all__ = [
    'PackRVOSInputs', 'RVOSFrameSample', 'LoadRVOSAnnotations',
    'LoadRVOSFrames', 'LoadSubjectSpan', 'CleanCaption', 'ExtractNounChunks'
]
__all__ += [
    'CheckValidFrames', 'ImageToPseudoVideo', 'NoValidFrameError',
    'VideoPhotoMetricDistortion', 'VideoRandomFlip', 'VideoRandomResize',
    'VideoRandomSizeCrop', 'swap_left_right'
]
