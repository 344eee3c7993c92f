# Copyright (c) OpenMMLab. All rights reserved.

from dmformer.registry import DATASETS
from .base_rvos_dataset import BaseRVOSDataset


@DATASETS.register_module()
class RefYouTubeVOSDataset(BaseRVOSDataset):
    """Ref-YouTube-VOS (`URVOS <https://arxiv.org/abs/2007.08193>`_).

    ``split`` fills the file layout of the official release (any argument
    given explicitly wins):

    - ``'train'``: ``meta_expressions/train/meta_expressions.json``,
      ``train/{JPEGImages,Annotations}``, ``train/meta.json``; one sample per
      (video, expression, anchor frame), anchors every ``anchor_stride``
      frames (like the official loader).
    - ``'valid'``: the videos of ``meta_expressions/valid`` *minus* those of
      ``meta_expressions/test`` (202 on the real data), frames
      in ``valid/JPEGImages``; one sample per (video, expression) with all
      frames. Ground truth is optional: masks are loaded for local scoring
      only when ``valid/Annotations`` exists.
    - ``'test'``: the videos of ``meta_expressions/test`` (their frames are
      in ``valid/JPEGImages`` in the official release), all frames.

    Args:
        split (str): ``'train'``, ``'valid'`` or ``'test'``.
            Defaults to 'train'.
        **kwargs: Arguments of :class:`BaseRVOSDataset`.
    """

    SPLIT_DEFAULTS = dict(
        train=dict(
            ann_file='meta_expressions/train/meta_expressions.json',
            data_prefix=dict(
                img_path='train/JPEGImages', ann_path='train/Annotations'),
            meta_file='train/meta.json',
            exclude_ann_file=None,
            sample_mode='anchor'),
        valid=dict(
            ann_file='meta_expressions/valid/meta_expressions.json',
            data_prefix=dict(
                img_path='valid/JPEGImages', ann_path='valid/Annotations'),
            meta_file=None,
            exclude_ann_file='meta_expressions/test/meta_expressions.json',
            sample_mode='video'),
        test=dict(
            ann_file='meta_expressions/test/meta_expressions.json',
            data_prefix=dict(img_path='valid/JPEGImages', ann_path=''),
            meta_file=None,
            exclude_ann_file=None,
            sample_mode='video'))

    def __init__(self, split: str = 'train', **kwargs) -> None:
        kwargs = self._with_split_defaults(split, kwargs)
        self.split = split
        super().__init__(**kwargs)
