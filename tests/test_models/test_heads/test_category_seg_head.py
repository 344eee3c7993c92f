# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from dmformer.models.heads import CategorySegHead
from dmformer.testing import sample_with_id_maps

CLASSES = ('circle', 'square', 'star')


def _sample(id_maps, categories, video_id='v'):
    meta = {} if categories is None else dict(object_categories=categories)
    return sample_with_id_maps(id_maps, video_id=video_id, **meta)


def _head(**kwargs):
    torch.manual_seed(0)
    return CategorySegHead(
        classes=CLASSES, in_channels=4, channels=8, num_levels=2,
        feat_stride=4, **kwargs)


def test_targets_map_objects_to_their_class_and_ignore_the_rest():
    head = _head()
    ids = torch.zeros(2, 6, 7, dtype=torch.uint8)  # unpadded 6 x 7
    ids[:, 0:2, 0:2] = 3   # a star
    ids[0, 4:6, 4:7] = 1   # a square
    ids[1, 3, 3] = 9       # a category outside ``classes``: ignored
    targets = head.get_targets(
        [_sample(ids, {1: 'square', 3: 'star', 9: 'person'})], 2, (8, 8),
        torch.device('cpu'))
    assert targets.shape == (2, 8, 8) and targets.dtype == torch.long
    assert (targets[:, 0:2, 0:2] == 3).all()           # star: class 2 + 1
    assert (targets[0, 4:6, 4:7] == 2).all()           # square: 1 + 1
    assert targets[1, 3, 3] == 255
    assert targets[0, 3, 3] == 0                       # background
    # padding (rows 6-7, column 7) is ignored, not background
    assert (targets[:, 6:] == 255).all() and (targets[:, :, 7] == 255).all()


def test_loss_is_the_pixel_cross_entropy_over_the_kept_pixels():
    head = _head()
    ids = torch.zeros(1, 8, 8, dtype=torch.uint8)
    ids[0, :4, :4] = 1
    feats = [torch.randn(1, 4, 2, 2), torch.randn(1, 4, 1, 1)]
    samples = [_sample(ids, {1: 'circle'})]
    losses = head.loss(feats, samples)
    logits = F.interpolate(
        head(feats), size=(8, 8), mode='bilinear', align_corners=False)
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, :4, :4] = 1
    torch.testing.assert_close(losses['loss_category_seg'],
                               F.cross_entropy(logits, target))
    acc = (logits.argmax(1)[0, :4, :4] == 1).float().mean()
    torch.testing.assert_close(losses['category_seg_acc'], acc)
    losses['loss_category_seg'].backward()
    assert head.lateral_convs[1].weight.grad.abs().sum() > 0


def test_loss_learns_to_segment_by_category():
    """A few steps on fixed features: the object pixels get their class."""
    head = _head()
    ids = torch.zeros(2, 8, 8, dtype=torch.uint8)
    ids[0, :4, :4] = 1
    ids[1, 4:, 4:] = 2
    samples = [_sample(ids[:1], {1: 'circle'}), _sample(ids[1:], {2: 'star'})]
    torch.manual_seed(1)
    feats = [torch.randn(2, 4, 2, 2), torch.randn(2, 4, 1, 1)]
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        head.loss(feats, samples)['loss_category_seg'].backward()
        opt.step()
    assert head.loss(feats, samples)['category_seg_acc'] > 0.9


def test_bad_inputs_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match='distinct'):
        CategorySegHead(classes=('a', 'a'), in_channels=4)
    with pytest.raises(ValueError, match='ignore_index'):
        CategorySegHead(classes=CLASSES, in_channels=4, ignore_index=2)
    head = _head()
    ids = torch.zeros(1, 8, 8, dtype=torch.uint8)
    feats = [torch.randn(1, 4, 2, 2), torch.randn(1, 4, 1, 1)]
    with pytest.raises(ValueError, match='with_object_categories'):
        head.loss(feats, [_sample(ids, None, video_id='vid7')])
    with pytest.raises(ValueError, match='2 levels'):
        head.loss(feats[:1], [_sample(ids, {})])


def test_without_background_only_object_pixels_count():
    head = _head(with_background=False)
    ids = torch.zeros(1, 8, 8, dtype=torch.uint8)
    ids[0, :4, :4] = 2
    targets = head.get_targets([_sample(ids, {2: 'star'})], 1, (8, 8),
                               torch.device('cpu'))
    assert (targets[0, :4, :4] == 3).all()
    assert (targets[0, 4:] == 255).all() and (targets[0, :, 4:] == 255).all()
    feats = [torch.randn(1, 4, 2, 2), torch.randn(1, 4, 1, 1)]
    logits = F.interpolate(
        head(feats), size=(8, 8), mode='bilinear', align_corners=False)
    expected = F.cross_entropy(logits[0, :, :4, :4].reshape(4, -1).t(),
                               torch.full((16, ), 3))
    torch.testing.assert_close(
        head.loss(feats, [_sample(ids, {2: 'star'})])['loss_category_seg'],
        expected)
