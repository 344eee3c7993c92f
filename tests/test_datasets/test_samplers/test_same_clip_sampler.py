# Copyright (c) OpenMMLab. All rights reserved.
from collections import Counter

import pytest

from dmformer.datasets import SameClipGroupSampler


class _Infos:
    """A dataset stub: (video, expression, anchor) data infos."""

    def __init__(self, exps_per_clip):
        self.infos = [
            dict(video_id=f'v{v}', exp_id=str(e), anchor_idx=a)
            for v, num in enumerate(exps_per_clip) for a in (0, 5)
            for e in range(num)
        ]

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, idx):
        return dict(self.infos[idx])


def _clip(ds, idx):
    info = ds.get_data_info(idx)
    return info['video_id'], info['anchor_idx']


def test_groups_hold_expressions_of_one_clip():
    ds = _Infos([2, 3, 4, 1, 2])  # 12 expressions x 2 anchors
    sampler = SameClipGroupSampler(ds, group_size=2, seed=0)
    indices = list(sampler)
    assert len(indices) == len(sampler) == len(ds)
    assert Counter(indices) == Counter(range(len(ds)))  # each once
    pairs = [indices[i:i + 2] for i in range(0, len(indices), 2)]
    same = [_clip(ds, a) == _clip(ds, b) for a, b in pairs]
    # clips with an odd number of expressions leave one sample each
    # (v1 and v3 at both anchors): 4 leftovers form 2 mixed groups
    assert sum(same) == len(pairs) - 2
    for a, b in pairs:
        if _clip(ds, a) == _clip(ds, b):
            assert ds.get_data_info(a)['exp_id'] != \
                ds.get_data_info(b)['exp_id']


def test_order_depends_on_seed_and_epoch_only():
    ds = _Infos([2, 3, 4])
    first = list(SameClipGroupSampler(ds, seed=3))
    assert first == list(SameClipGroupSampler(ds, seed=3))
    assert first != list(SameClipGroupSampler(ds, seed=4))
    sampler = SameClipGroupSampler(ds, seed=3)
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert Counter(list(sampler)) == Counter(first)
    ordered = list(SameClipGroupSampler(ds, shuffle=False, seed=0))
    assert sorted(ordered) == list(range(len(ds)))


def test_ranks_get_whole_groups(monkeypatch):
    import dmformer.datasets.samplers.same_clip_sampler as module
    ds = _Infos([2, 2, 2, 2, 3])
    seen = []
    for rank in range(2):
        monkeypatch.setattr(module.DefaultSampler, '__init__',
                            _fake_init(rank, 2))
        sampler = SameClipGroupSampler(ds, seed=0)
        indices = list(sampler)
        assert len(indices) == len(sampler)
        seen += indices
        pairs = [indices[i:i + 2] for i in range(0, len(indices), 2)]
        assert sum(_clip(ds, a) == _clip(ds, b) for a, b in pairs) >= \
            len(pairs) - 1
    assert set(seen) == set(range(len(ds)))


def _fake_init(rank, world_size):

    def init(self, dataset, shuffle=True, seed=None, round_up=True):
        self.rank, self.world_size = rank, world_size
        self.dataset, self.shuffle, self.seed = dataset, shuffle, seed
        self.epoch, self.round_up = 0, round_up

    return init


def test_bad_dataset():
    with pytest.raises(ValueError, match='group_size'):
        SameClipGroupSampler(_Infos([2]), group_size=0, seed=0)

    class NoVideo(_Infos):

        def get_data_info(self, idx):
            return dict(exp_id='0')

    with pytest.raises(ValueError, match='no video_id'):
        SameClipGroupSampler(NoVideo([2]), seed=0)
