# Copyright (c) OpenMMLab. All rights reserved.
import math
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sized, Tuple

import torch
from mmengine.dataset.sampler import DefaultSampler
from mmengine.dist import get_dist_info

from dmformer.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class SameClipGroupSampler(DefaultSampler):
    """Shuffle the samples in groups of expressions of the same clip.

    A training sample of an RVOS dataset is one (video, expression, anchor
    frame). This sampler puts ``group_size`` *different expressions of the
    same video and anchor* next to each other, so a batch whose size is a
    multiple of ``group_size`` sees the same frames described by different
    sentences, typically about different objects (and, on the synthetic
    data, both sentences of a swap pair, which use the same words for two
    referents). The model has to tell the sentences apart on the same
    pixels instead of learning which object of a clip is salient.

    Every sample is still drawn exactly once per epoch: each clip's
    expressions are shuffled and cut into groups; the samples left over
    (a clip with an odd number of expressions) are grouped across clips;
    then the groups are shuffled. With several processes whole groups are
    dealt to the ranks. Like :class:`mmengine.dataset.DefaultSampler` the
    order depends only on ``seed`` and the epoch.

    Args:
        dataset (Sized): A dataset whose data infos have ``video_id`` and
            ``anchor_idx`` (``BaseRVOSDataset`` in ``'anchor'`` mode).
        group_size (int): Expressions per clip kept together. The batch size
            should be a multiple of it. Defaults to 2.
        shuffle (bool): Shuffle the groups (and the expressions inside a
            clip). Defaults to True.
        seed (int, optional): Random seed, shared by all ranks. Defaults to
            None (synchronised random seed).
        round_up (bool): Repeat groups so that every rank gets the same
            number of samples. Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 group_size: int = 2,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        super().__init__(
            dataset, shuffle=shuffle, seed=seed, round_up=round_up)
        if group_size < 1:
            raise ValueError(f'group_size must be >= 1, got {group_size}')
        self.group_size = group_size
        clips: Dict[Tuple, List[int]] = defaultdict(list)
        for idx in range(len(dataset)):
            info = dataset.get_data_info(idx)
            if 'video_id' not in info:
                raise ValueError(
                    f'SameClipGroupSampler: data info {idx} of '
                    f'{type(dataset).__name__} has no video_id')
            clips[(info['video_id'], info.get('anchor_idx'))].append(idx)
        self.clips = list(clips.values())
        num_groups = math.ceil(len(dataset) / group_size)
        if round_up:
            groups_per_rank = math.ceil(num_groups / self.world_size)
            self.num_samples = groups_per_rank * group_size
        else:
            rank, _ = get_dist_info()
            self.num_samples = len(
                range(rank, num_groups, self.world_size)) * group_size
        self.total_size = self.num_samples * self.world_size

    def _groups(self) -> List[List[int]]:
        """The groups of this epoch, in order."""
        gen = torch.Generator()
        gen.manual_seed(self.seed + self.epoch)

        def perm(n: int) -> List[int]:
            return torch.randperm(n, generator=gen).tolist() \
                if self.shuffle else list(range(n))

        size = self.group_size
        groups, leftovers = [], []
        for clip in self.clips:
            clip = [clip[i] for i in perm(len(clip))]
            full = len(clip) - len(clip) % size
            groups += [clip[i:i + size] for i in range(0, full, size)]
            leftovers += clip[full:]
        leftovers = [leftovers[i] for i in perm(len(leftovers))]
        groups += [
            leftovers[i:i + size] for i in range(0, len(leftovers), size)
        ]
        return [groups[i] for i in perm(len(groups))]

    def __iter__(self) -> Iterator[int]:
        """Iterate the indices of this rank."""
        groups = self._groups()
        if self.round_up:
            per_rank = math.ceil(len(groups) / self.world_size)
            groups = (groups * (per_rank * self.world_size // len(groups) +
                                1))[:per_rank * self.world_size]
        indices = [
            idx for group in groups[self.rank::self.world_size]
            for idx in group
        ]
        if self.round_up:
            # the last group may be short: keep the advertised length
            indices = (indices * 2)[:self.num_samples]
        return iter(indices)
