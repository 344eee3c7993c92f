# Copyright (c) OpenMMLab. All rights reserved.
import random
from typing import List, Optional

from mmcv.transforms import BaseTransform
from mmengine import fileio

from dmformer.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RVOSFrameSample(BaseTransform):
    """Sample the frames of an RVOS clip and switch to the dict-of-lists
    convention (see :mod:`dmformer.datasets.transforms.loading`).

    Training (``mode='train'``, the Ref-YouTube-VOS sampler of the official
    ``datasets/ytvos.py``), for a video of ``n`` frames and the
    anchor index ``f`` of the data info:

    1. the anchor ``f``;
    2. two local frames ``max(0, f - U{1..max_skip})`` and
       ``min(n - 1, f + U{1..max_skip})`` (the official code hard-codes 3
       and ignores ``--max_skip``; here ``max_skip`` is honoured);
    3. ``num_frames - 3`` global frames drawn without replacement from the
       frames *outside* the local window ``[min, max]`` (the official code
       also allows the window's last frame); if there are too few of them,
       from the whole video, and with repetition if the video is shorter
       than ``num_frames - 3``;
    4. the indices are sorted (duplicates are possible in short videos).

    With ``num_frames == 2`` a single local frame (before or after, at
    random) is drawn; with ``num_frames == 1`` only the anchor is kept.

    Testing (``mode='test'``): all frames of the data info in order.

    Required Keys:

    - video_frame_ids (list[str]), img_dir (str), img_suffix (str)
    - anchor_idx (int, optional; train; random if absent)
    - ann_dir (str or None, optional), ann_suffix (str, optional)

    Added Keys (per-frame lists):

    - frame_id, frame_idx, img_path and, if ``ann_dir`` is set, mask_path.

    Args:
        num_frames (int): Number of frames per training clip. Defaults to 5.
        max_skip (int): Largest distance of the two local frames to the
            anchor. Defaults to 3.
        mode (str): ``'train'`` or ``'test'``. Defaults to 'train'.
    """

    def __init__(self,
                 num_frames: int = 5,
                 max_skip: int = 3,
                 mode: str = 'train') -> None:
        if mode not in ('train', 'test'):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if num_frames < 1:
            raise ValueError(f'num_frames must be >= 1, got {num_frames}')
        if max_skip < 1:
            raise ValueError(f'max_skip must be >= 1, got {max_skip}')
        self.num_frames = num_frames
        self.max_skip = max_skip
        self.mode = mode

    def sample_indices(self, video_length: int, anchor: int) -> List[int]:
        """Sample the frame indices of a training clip.

        Args:
            video_length (int): Number of frames ``n`` of the video.
            anchor (int): Anchor index in ``[0, n)``.

        Returns:
            list[int]: ``num_frames`` sorted indices in ``[0, n)``.
        """
        if not 0 <= anchor < video_length:
            raise ValueError(f'anchor index {anchor} is out of range for a '
                             f'video of {video_length} frames')
        inds = [anchor]
        if self.num_frames == 1:
            return inds
        skip_before = random.randint(1, self.max_skip)
        skip_after = random.randint(1, self.max_skip)
        before = max(0, anchor - skip_before)
        after = min(video_length - 1, anchor + skip_after)
        if self.num_frames == 2:
            inds.append(random.choice([before, after]))
        else:
            inds.extend([before, after])
        num_global = self.num_frames - len(inds)
        if num_global > 0:
            lo, hi = min(inds), max(inds)
            outside = list(range(0, lo)) + list(range(hi + 1, video_length))
            if len(outside) >= num_global:
                inds.extend(random.sample(outside, num_global))
            elif video_length >= num_global:
                inds.extend(random.sample(range(video_length), num_global))
            else:
                # the video is shorter than the number of global frames:
                # every frame once, the rest drawn again (official rule,
                # with replacement when even that is not enough)
                extra = num_global - video_length
                if extra <= video_length:
                    inds.extend(random.sample(range(video_length), extra))
                else:
                    inds.extend(
                        random.randrange(video_length) for _ in range(extra))
                inds.extend(range(video_length))
        return sorted(inds)

    def transform(self, results: dict) -> dict:
        """Sample frames and add the per-frame lists.

        Args:
            results (dict): Video-level data info of one sample.

        Returns:
            dict: ``results`` with per-frame ``frame_id``, ``frame_idx``,
            ``img_path`` (and ``mask_path``) lists.
        """
        frame_ids = results['video_frame_ids']
        video_length = len(frame_ids)
        if video_length == 0:
            raise ValueError(
                f'Video {results.get("video_id", "?")!r} has no frames.')
        if self.mode == 'test':
            inds = list(range(video_length))
        else:
            anchor: Optional[int] = results.get('anchor_idx')
            if anchor is None:
                anchor = random.randrange(video_length)
            inds = self.sample_indices(video_length, anchor)
        sampled = [frame_ids[i] for i in inds]
        results['frame_idx'] = inds
        results['frame_id'] = sampled
        img_suffix = results.get('img_suffix', '.jpg')
        results['img_path'] = [
            fileio.join_path(results['img_dir'], f + img_suffix)
            for f in sampled
        ]
        if results.get('ann_dir') is not None:
            ann_suffix = results.get('ann_suffix', '.png')
            results['mask_path'] = [
                fileio.join_path(results['ann_dir'], f + ann_suffix)
                for f in sampled
            ]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f"max_skip={self.max_skip}, mode='{self.mode}')")


@TRANSFORMS.register_module()
class A2DFrameSample(RVOSFrameSample):
    """Sample a clip around the annotated frame (ReferFormer's A2D/JHMDB
    samplers) and record its position in ``valid_indices``.

    - ``mode='train'``: the sampler of Ref-YouTube-VOS
      (:meth:`RVOSFrameSample.sample_indices`) with the annotated frame as
      anchor: the anchor, two local frames within ``max_skip`` and
      ``num_frames - 3`` global frames, sorted.
    - ``mode='test'``: the window ``[f - num_frames // 2, f + (num_frames +
      1) // 2)`` centred on the annotated frame ``f``, out-of-range indices
      replaced by the first / last frame (edge padding).

    ``valid_indices`` is ``[clip.index(f)]``, the first position of the
    annotated frame (a short video may repeat it).

    Required Keys:

    - video_frame_ids (list[str]), img_dir (str), img_suffix (str)
    - anchor_idx (int): index of the annotated frame in ``video_frame_ids``.

    Added Keys:

    - frame_id, frame_idx, img_path (per-frame lists)
    - valid_indices (list[int])

    Args:
        num_frames (int): Clip length. Defaults to 5 (ReferFormer's
            ``--num_frames`` for training and evaluation).
        max_skip (int): Largest distance of the local frames in training.
            Defaults to 3.
        mode (str): ``'train'`` or ``'test'``. Defaults to 'train'.
    """

    def window_indices(self, video_length: int, center: int) -> List[int]:
        """Indices of the test window centred on ``center``.

        Args:
            video_length (int): Number of frames of the video.
            center (int): Index of the annotated frame.

        Returns:
            list[int]: ``num_frames`` sorted indices in ``[0, n)``.
        """
        if not 0 <= center < video_length:
            raise ValueError(f'annotated frame index {center} is out of '
                             f'range for a video of {video_length} frames')
        start = center - self.num_frames // 2
        return [
            min(max(i, 0), video_length - 1)
            for i in range(start, start + self.num_frames)
        ]

    def transform(self, results: dict) -> dict:
        """Sample the clip.

        Args:
            results (dict): Video-level data info of one sample.

        Returns:
            dict: ``results`` with the per-frame lists and
            ``valid_indices``.
        """
        frame_ids = results['video_frame_ids']
        anchor = results.get('anchor_idx')
        if not isinstance(anchor, int):
            raise ValueError(
                f'A2DFrameSample needs the index of the annotated frame '
                f'(anchor_idx) of video {results.get("video_id", "?")!r}, '
                f'got {anchor!r}.')
        if self.mode == 'test':
            inds = self.window_indices(len(frame_ids), anchor)
        else:
            inds = self.sample_indices(len(frame_ids), anchor)
        sampled = [frame_ids[i] for i in inds]
        results['frame_idx'] = inds
        results['frame_id'] = sampled
        suffix = results.get('img_suffix', '.jpg')
        results['img_path'] = [
            fileio.join_path(results['img_dir'], f + suffix) for f in sampled
        ]
        results['valid_indices'] = [inds.index(anchor)]
        return results
