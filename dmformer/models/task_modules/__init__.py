# Copyright (c) OpenMMLab. All rights reserved.
from .video_query_matcher import VideoQueryMatcher

__all__ = ['VideoQueryMatcher']
