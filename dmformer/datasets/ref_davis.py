# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from dmformer.registry import DATASETS
from .ref_youtube_vos import RefYouTubeVOSDataset


@DATASETS.register_module()
class RefDAVISDataset(RefYouTubeVOSDataset):
    """Ref-DAVIS17 (`Khoreva et al. <https://arxiv.org/abs/1803.08006>`_)
    after conversion to the Ref-YouTube-VOS layout by
    ``tools/dataset_converters/convert_davis_to_ytvos.py``.

    Each object has 4 expressions with ids ``4k .. 4k+3`` in the order
    [annotator 1 first-frame, annotator 1 full-video, annotator 2
    first-frame, annotator 2 full-video]; ``annotator`` keeps the
    expressions with ``int(exp_id) % 4 == annotator`` (the official
    protocol evaluates each of the 4 sets and averages their J&F).

    Splits: ``'train'`` (60 videos, anchors like Ref-YouTube-VOS) and
    ``'valid'`` (30 videos, all frames, ground truth in
    ``valid/Annotations``, objects checked against ``valid/meta.json``).

    Args:
        annotator (int, optional): Expression set 0..3; None keeps all.
            Defaults to None.
        split (str): ``'train'`` or ``'valid'``. Defaults to 'valid'.
        **kwargs: Arguments of :class:`BaseRVOSDataset`.
    """

    SPLIT_DEFAULTS = dict(
        train=RefYouTubeVOSDataset.SPLIT_DEFAULTS['train'],
        valid=dict(
            ann_file='meta_expressions/valid/meta_expressions.json',
            data_prefix=dict(
                img_path='valid/JPEGImages', ann_path='valid/Annotations'),
            meta_file='valid/meta.json',
            exclude_ann_file=None,
            sample_mode='video'))

    def __init__(self,
                 annotator: Optional[int] = None,
                 split: str = 'valid',
                 **kwargs) -> None:
        if annotator is not None and annotator not in (0, 1, 2, 3):
            raise ValueError(
                f'annotator must be None or one of 0..3, got {annotator!r}')
        self.annotator = annotator
        super().__init__(split=split, **kwargs)

    def keep_expression(self, video_id: str, exp_id: str) -> bool:
        """Keep the expressions of the selected annotator set."""
        if self.annotator is None:
            return True
        try:
            return int(exp_id) % 4 == self.annotator
        except ValueError:
            raise ValueError(
                f'Ref-DAVIS expression ids must be integers, got {exp_id!r} '
                f'in video {video_id!r} of {self.ann_file!r}.')
