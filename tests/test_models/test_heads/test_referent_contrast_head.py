# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from dmformer.models.heads import ReferentContrastHead
from dmformer.structures import RVOSDataSample
from dmformer.testing import sample_with_id_maps


def _sample(id_maps, expressions, video_id='v'):
    return sample_with_id_maps(
        id_maps, video_id=video_id, video_expressions=expressions)


def _head(**kwargs):
    torch.manual_seed(0)
    return ReferentContrastHead(
        in_channels=4, text_channels=6, embed_dims=8, num_levels=2,
        feat_stride=4, **kwargs)


def test_pool_objects_is_the_area_weighted_mean():
    head = _head()
    # 2 frames, level 0 of 3x3 cells (12x12 px, stride 4), level 1 of 2x2
    f0 = torch.arange(2 * 4 * 9, dtype=torch.float).view(2, 4, 3, 3)
    f1 = torch.zeros(2, 4, 2, 2)
    ids = torch.zeros(2, 10, 12, dtype=torch.long)  # unpadded 10 x 12
    ids[0, 0:4, 0:4] = 3     # cell (0, 0) of frame 0, whole
    ids[1, 4:6, 8:12] = 3    # half of cell (1, 2) of frame 1
    ids[:, 8:10, 4:8] = 5    # half of cell (2, 1) in both frames
    pooled = head.pool_objects([f0, f1], ids, torch.tensor([3, 5]))
    assert pooled.shape == (2, 8)
    obj3 = (1. * f0[0, :, 0, 0] + 0.5 * f0[1, :, 1, 2]) / 1.5
    obj5 = (f0[0, :, 2, 1] + f0[1, :, 2, 1]) / 2
    torch.testing.assert_close(pooled[0, :4], obj3)
    torch.testing.assert_close(pooled[1, :4], obj5)
    # the upsampled second level is concatenated after the first
    torch.testing.assert_close(pooled[:, 4:], torch.zeros(2, 4))


def test_loss_is_the_cross_entropy_over_the_clip_objects():
    head = _head(temperature=0.5)
    ids = torch.zeros(1, 8, 8, dtype=torch.long)
    ids[0, :4, :4], ids[0, 4:, 4:] = 1, 2
    expressions = [dict(text='a', obj_id=2), dict(text='b', obj_id=1),
                   dict(text='c', obj_id=7)]  # 7: not in the clip
    feats = [torch.randn(1, 4, 2, 2), torch.randn(1, 4, 1, 1)]
    sentences = torch.randn(3, 6)
    losses = head.loss(feats, sentences, [_sample(ids, expressions)])
    pooled = head.pool_objects(feats, ids, torch.tensor([1, 2]))
    objs = F.normalize(head.visual_proj(pooled), dim=-1)
    texts = F.normalize(head.text_proj(sentences[:2]), dim=-1)
    logits = 2.0 * texts @ objs.t()
    expected = F.cross_entropy(logits, torch.tensor([1, 0]))
    torch.testing.assert_close(losses['loss_referent'], expected)
    acc = (logits.argmax(1) == torch.tensor([1, 0])).float().mean()
    assert losses['referent_acc'].item() == pytest.approx(acc.item())
    losses['loss_referent'].backward()
    assert head.logit_scale.grad is not None
    assert head.logit_scale.item() == pytest.approx(math.log(2.0))


def test_loss_pads_clips_with_different_object_counts():
    head = _head()
    two = torch.zeros(1, 8, 8, dtype=torch.long)
    two[0, :4], two[0, 4:] = 1, 2
    three = two.clone()
    three[0, :2, :2] = 3
    samples = [_sample(two, [dict(text='a', obj_id=1)]),
               _sample(three, [dict(text='b', obj_id=3),
                               dict(text='c', obj_id=2)])]
    feats = [torch.randn(2, 4, 2, 2), torch.randn(2, 4, 1, 1)]
    losses = head.loss(feats, torch.randn(3, 6), samples)
    # a perfect embedding drives every term to zero: check the padded slot
    # never wins and the mean is over the three expressions
    assert torch.isfinite(losses['loss_referent'])
    assert 0 <= losses['referent_acc'].item() <= 1


def test_clips_with_one_object_add_nothing_but_keep_the_graph():
    head = _head()
    ids = torch.zeros(1, 8, 8, dtype=torch.long)
    ids[0, :4, :4] = 1
    losses = head.loss([torch.randn(1, 4, 2, 2), torch.randn(1, 4, 1, 1)],
                       torch.randn(1, 6, requires_grad=True),
                       [_sample(ids, [dict(text='a', obj_id=1)])])
    assert losses['loss_referent'].item() == 0
    losses['loss_referent'].backward()


def test_errors():
    head = _head()
    ids = torch.zeros(1, 8, 8, dtype=torch.long)
    feats = [torch.randn(1, 4, 2, 2)]
    bare = RVOSDataSample(metainfo=dict(video_id='vidX'))
    bare.gt_instances = InstanceData(masks=torch.zeros(1, 8, 8).bool())
    with pytest.raises(ValueError, match="'vidX' lacks"):
        head.loss(feats, torch.randn(1, 6), [bare])
    with pytest.raises(ValueError, match='2 sentence features for 1'):
        head.loss(feats, torch.randn(2, 6),
                  [_sample(ids, [dict(text='a', obj_id=1)])])
    with pytest.raises(ValueError, match='temperature'):
        ReferentContrastHead(4, 6, temperature=0.)
