# Copyright (c) OpenMMLab. All rights reserved.
import random

import pytest

from dmformer.datasets.transforms import RVOSFrameSample


def video_info(num_frames, anchor=None, with_ann=True):
    return dict(
        video_id='vid',
        video_frame_ids=[f'{5 * k:05d}' for k in range(num_frames)],
        img_dir='root/JPEGImages/vid',
        ann_dir='root/Annotations/vid' if with_ann else None,
        img_suffix='.jpg',
        ann_suffix='.png',
        anchor_idx=anchor)


def test_paths_and_lists():
    random.seed(0)
    results = RVOSFrameSample(
        num_frames=5, max_skip=3).transform(video_info(20, anchor=10))
    inds = results['frame_idx']
    assert len(inds) == 5 and inds == sorted(inds) and 10 in inds
    assert results['frame_id'] == [f'{5 * k:05d}' for k in inds]
    assert results['img_path'] == [
        f'root/JPEGImages/vid/{5 * k:05d}.jpg' for k in inds
    ]
    assert results['mask_path'] == [
        f'root/Annotations/vid/{5 * k:05d}.png' for k in inds
    ]
    # video-level keys stay scalars
    assert results['video_id'] == 'vid'
    results = RVOSFrameSample().transform(video_info(20, 3, with_ann=False))
    assert 'mask_path' not in results


def test_local_and_global_frames(monkeypatch):
    """With the local skips fixed, the local frames are anchor - 4 and
    anchor + 2, and the 2 global frames lie outside that window."""
    sampler = RVOSFrameSample(num_frames=5, max_skip=5)
    skips = iter([4, 2] * 200)
    monkeypatch.setattr(random, 'randint', lambda a, b: next(skips))
    random.seed(1)
    for _ in range(200):
        inds = sampler.sample_indices(40, 20)
        assert 16 in inds and 20 in inds and 22 in inds
        others = list(inds)
        for k in (16, 20, 22):
            others.remove(k)
        assert len(others) == 2
        assert all(k < 16 or k > 22 for k in others)


@pytest.mark.parametrize('max_skip', [1, 3, 7])
def test_max_skip_is_honoured(max_skip):
    random.seed(0)
    sampler = RVOSFrameSample(num_frames=3, max_skip=max_skip)
    gaps_before, gaps_after = set(), set()
    for _ in range(400):
        before, anchor, after = sampler.sample_indices(100, 50)
        assert anchor == 50
        gaps_before.add(anchor - before)
        gaps_after.add(after - anchor)
    # every skip in 1..max_skip is drawn, nothing beyond
    assert gaps_before == gaps_after == set(range(1, max_skip + 1))


def test_borders_and_short_videos():
    random.seed(0)
    sampler = RVOSFrameSample(num_frames=5, max_skip=3)
    for _ in range(50):
        inds = sampler.sample_indices(10, 0)
        assert inds[0] == 0 and len(inds) == 5
        assert all(0 <= k < 10 for k in inds)
    # 3 frames: the local window covers the video, global frames come from
    # the whole video
    for _ in range(50):
        inds = sampler.sample_indices(3, 1)
        assert inds == sorted(inds) and len(inds) == 5
        assert set(inds) == {0, 1, 2}
    # single-frame video: all 5 entries are frame 0
    assert sampler.sample_indices(1, 0) == [0] * 5
    assert RVOSFrameSample(num_frames=1).sample_indices(10, 4) == [4]
    two = RVOSFrameSample(num_frames=2, max_skip=2).sample_indices(10, 5)
    assert len(two) == 2 and 5 in two and max(two) - min(two) <= 2
    with pytest.raises(ValueError, match='out of range'):
        sampler.sample_indices(3, 3)


def test_random_anchor_when_missing():
    random.seed(0)
    results = RVOSFrameSample(num_frames=5).transform(video_info(8))
    assert len(results['frame_idx']) == 5


def test_test_mode_takes_all_frames():
    results = RVOSFrameSample(mode='test').transform(video_info(7, anchor=3))
    assert results['frame_idx'] == list(range(7))
    assert results['frame_id'][-1] == '00030'


def test_errors_and_repr():
    with pytest.raises(ValueError, match='mode'):
        RVOSFrameSample(mode='val')
    with pytest.raises(ValueError, match='num_frames'):
        RVOSFrameSample(num_frames=0)
    with pytest.raises(ValueError, match='max_skip'):
        RVOSFrameSample(max_skip=0)
    with pytest.raises(ValueError, match='no frames'):
        RVOSFrameSample().transform(video_info(0))
    assert repr(RVOSFrameSample(num_frames=4, max_skip=2)) == (
        "RVOSFrameSample(num_frames=4, max_skip=2, mode='train')")
