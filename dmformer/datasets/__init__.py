# Copyright (c) OpenMMLab. All rights reserved.
from .a2d_sentences import A2DSentencesDataset, JHMDBSentencesDataset
from .base_rvos_dataset import BaseRVOSDataset
from .mevis import MeViSDataset
from .ref_davis import RefDAVISDataset
from .ref_youtube_vos import RefYouTubeVOSDataset
from .refcoco import RefCOCODataset
from .samplers import SameClipGroupSampler
from .transforms import *  # noqa: F401,F403

__all__ = [
    'BaseRVOSDataset', 'MeViSDataset', 'RefDAVISDataset',
    'RefYouTubeVOSDataset', 'RefCOCODataset', 'A2DSentencesDataset',
    'JHMDBSentencesDataset', 'SameClipGroupSampler'
]
