# Copyright (c) OpenMMLab. All rights reserved.
"""A clip's prediction must not depend on what it is batched with.

Clip A (70 x 100, padded to 96 x 128 alone) is predicted alone and batched
with a larger clip B (150 x 170, so the batch is padded to 160 x 192) that
has a longer caption. With ``batch_invariant=True`` (the default) the mask
logits of A's own padded region, its scores, boxes and binary masks agree;
with ``batch_invariant=False`` (the official behaviour: GroupNorm statistics
and borders over the whole batch canvas) they do not, which shows that the
comparison can fail.

Long videos are segmented in clips of ``test_cfg.clip_len`` frames.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from dmformer.models.utils.ckpt_convert import current_to_legacy_key
from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample
from dmformer.testing import seeded_parameters
from dmformer.utils import register_all_modules

TINY_CFG = 'configs/dmformer/dmformer_tiny_synthetic.py'
NUM_FRAMES = 2


def _clip(seed, text, shape):
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    frames = torch.randint(0, 256, (NUM_FRAMES, 3, h, w), generator=gen,
                           dtype=torch.uint8)
    sample = RVOSDataSample(
        metainfo=dict(
            text=text,
            img_shape=(h, w),
            ori_shape=(h, w),
            video_id=f'v{seed}',
            exp_id='0'))
    masks = torch.zeros(NUM_FRAMES, h, w, dtype=torch.bool)
    masks[:, h // 4:h // 2, w // 4:w // 2] = True
    boxes = torch.tensor([[w // 4, h // 4, w // 2, h // 2]] * NUM_FRAMES,
                         dtype=torch.float32)
    sample.gt_instances = InstanceData(
        masks=masks, bboxes=boxes, valid=torch.ones(NUM_FRAMES).bool())
    sample.gt_subject_span = torch.tensor([0, 3])
    return frames, sample


def _batch(*clips):
    return dict(
        inputs=[c[0] for c in clips],
        data_samples=[copy.deepcopy(c[1]) for c in clips])


@pytest.fixture(scope='module')
def tiny_model():
    register_all_modules()
    model = MODELS.build(Config.fromfile(TINY_CFG).model)
    # seeded as before the mmdet module names
    seeded_parameters(model, current_to_legacy_key)
    return model.eval()


CLIP_A = (0, 'the small striped square', (70, 100))
CLIP_B = (1, 'the big orange diamond far from the small striped square '
          'that moves to the left of the yellow circle', (150, 170))


def _predict(model, *clips):
    data = model.data_preprocessor(_batch(*clips), False)
    with torch.no_grad():
        outs = model(**data, mode='tensor')
        preds = model(**data, mode='predict')
    return outs, preds[0].pred_instances, tuple(data['inputs'].shape[-2:])


@pytest.mark.parametrize('invariant', [True, False])
def test_prediction_does_not_depend_on_batch_mates(tiny_model, invariant):
    model = copy.deepcopy(tiny_model)
    model.batch_invariant = invariant
    a, b = _clip(*CLIP_A), _clip(*CLIP_B)
    outs_a, pred_a, shape_a = _predict(model, a)
    outs_ab, pred_ab, shape_ab = _predict(model, a, b)
    assert shape_a == (96, 128) and shape_ab == (160, 192)

    # stride-4 mask logits of A's own padded region (96/4 x 128/4)
    logits_a = outs_a['all_mask_preds'][:, 0]
    logits_ab = outs_ab['all_mask_preds'][:, 0, ..., :24, :32]
    logit_diff = (logits_a - logits_ab).abs().max().item()
    score_diff = (pred_a.scores - pred_ab.scores).abs().max().item()
    if invariant:
        assert logit_diff < 1e-3
        assert score_diff < 1e-4
        assert torch.allclose(pred_a.bboxes, pred_ab.bboxes, atol=1e-3)
        flipped = (pred_a.masks != pred_ab.masks).float().mean().item()
        assert flipped <= 1e-3
    else:
        # the official padding lets the batch mate leak into A
        assert logit_diff > 1e-2


@pytest.mark.parametrize('invariant_train', [True, False])
def test_mixed_sizes_train_step(tiny_model, invariant_train):
    """Training on clips of different padded sizes: batch-padded like the
    official code by default, per clip size with ``batch_invariant_train``
    (the train-mode outputs of a clip then do not depend on its batch
    mate either)."""
    model = copy.deepcopy(tiny_model).train()
    model.batch_invariant_train = invariant_train
    a, b = _clip(*CLIP_A), _clip(*CLIP_B)
    calls = []
    model.backbone.register_forward_hook(
        lambda module, args, out: calls.append(tuple(args[0].shape[-2:])))
    losses = model(
        **model.data_preprocessor(_batch(a, b), True), mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.patch_embed.projection.weight.grad.abs().sum() > 0
    assert model.neck.convs[0].conv.weight.grad.abs().sum() > 0
    # one backbone call per padded size, or one for the padded batch
    assert calls == ([(96, 128), (160, 192)]
                     if invariant_train else [(160, 192)])

    with torch.no_grad():
        alone = model(**model.data_preprocessor(_batch(a), False),
                      mode='tensor')['all_mask_preds'][:, 0]
        batched = model(**model.data_preprocessor(_batch(a, b), False),
                        mode='tensor')['all_mask_preds'][:, 0, ..., :24, :32]
    diff = (alone - batched).abs().max().item()
    assert (diff < 1e-3) if invariant_train else (diff > 1e-2)


def test_long_video_is_predicted_in_clips(tiny_model):
    """With ``test_cfg.clip_len`` a video is segmented clip by clip: the
    result equals predicting each clip on its own, concatenated."""
    model = copy.deepcopy(tiny_model)
    gen = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 256, (5, 3, 64, 96), generator=gen,
                           dtype=torch.uint8)
    sample = RVOSDataSample(
        metainfo=dict(
            text='the small striped square',
            img_shape=(64, 96),
            ori_shape=(64, 96),
            video_id='v',
            exp_id='0'))

    def predict(clip, clip_len):
        model.test_cfg['clip_len'] = clip_len
        data = model.data_preprocessor(
            dict(inputs=[clip], data_samples=[copy.deepcopy(sample)]), False)
        with torch.no_grad():
            return model(**data, mode='predict')[0]

    whole = predict(frames, 2)
    assert len(whole.pred_instances) == 5
    assert whole.pred_subject == 'the small striped square'
    parts = [predict(frames[s:s + 2], None).pred_instances for s in (0, 2, 4)]
    for key in ('masks', 'scores', 'bboxes'):
        torch.testing.assert_close(
            whole.pred_instances.get(key),
            torch.cat([p.get(key) for p in parts]))
    # test_step preprocesses a long video clip by clip (flat memory): the
    # same predictions as preprocessing it whole, ground truth untouched
    from mmengine.model import BaseModel
    model.test_cfg['clip_len'] = 2
    gt = torch.zeros(5, 64, 96, dtype=torch.bool)
    by_clip_sample = copy.deepcopy(sample)
    by_clip_sample.gt_instances = InstanceData(masks=gt)
    calls = []
    handle = model.data_preprocessor.register_forward_hook(
        lambda module, args, out: calls.append(out['inputs'].shape[1]))
    try:
        with torch.no_grad():
            by_clip = model.test_step(
                dict(inputs=[frames], data_samples=[by_clip_sample]))[0]
            at_once = BaseModel.test_step(
                model,
                dict(inputs=[frames],
                     data_samples=[copy.deepcopy(sample)]))[0]
    finally:
        handle.remove()
    assert calls == [2, 2, 1, 5]  # three clips, then the whole video
    for key in ('masks', 'scores', 'bboxes'):
        assert torch.equal(by_clip.pred_instances.get(key),
                           at_once.pred_instances.get(key))
    assert by_clip.pred_subject == 'the small striped square'
    assert by_clip.gt_instances.masks is gt
    with pytest.raises(ValueError, match='clip_len'):
        MODELS.build(
            dict(Config.fromfile(TINY_CFG).model, test_cfg=dict(clip_len=0)))
