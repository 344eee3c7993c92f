# Copyright (c) OpenMMLab. All rights reserved.
"""Inference under autocast (``test_cfg.amp``): masks agree with float32."""
import numpy as np
import pytest
import torch

from dmformer.apis import inference_clip, init_model
from dmformer.datasets.synthetic_rvos import generate_video
from dmformer.models.utils.ckpt_convert import current_to_legacy_key
from dmformer.testing import seeded_parameters

TEXTS = ['the big orange diamond', 'the small striped square far from the '
         'big orange diamond', 'the red circle moving left']


def _mean_iou(ref, out):
    ious = []
    for a, b in zip(ref, out):
        for x, y in zip(a.pred_instances.masks, b.pred_instances.masks):
            union = (x | y).sum().item()
            ious.append(1. if union == 0 else (x & y).sum().item() / union)
    return float(np.mean(ious))


@pytest.fixture(scope='module')
def seeded():
    model = init_model('configs/dmformer/dmformer_tiny_synthetic.py')
    # seeded as before the mmdet module names
    seeded_parameters(model, current_to_legacy_key)
    # a video of the built-in synthetic data (moving textured shapes)
    video = generate_video(np.random.default_rng(0), num_frames=3, size=96)
    frames = list(video['frames'])
    ref = [inference_clip(model, frames, [t])[0] for t in TEXTS]
    return model, frames, ref


# measured on this model and video: fp16 0.997, bf16 0.989 (bf16 keeps 8
# mantissa bits; the trained tiny checkpoint on a synthetic valid video:
# 0.999 / 0.985)
@pytest.mark.parametrize('amp, min_iou', [('fp16', 0.99), ('bf16', 0.98)])
def test_amp_masks_agree_with_float32(seeded, amp, min_iou):
    model, frames, ref = seeded
    model.test_cfg['amp'] = amp
    try:
        out = [inference_clip(model, frames, [t])[0] for t in TEXTS]
    finally:
        model.test_cfg['amp'] = None
    for res in out:  # post-processed in float32
        assert res.pred_instances.scores.dtype == torch.float32
        assert res.pred_instances.masks.dtype == torch.bool
    iou = _mean_iou(ref, out)
    assert min_iou <= iou, iou
    # the features kept for the next call belong to one precision
    assert model._visual_cache[1] == amp
    again = inference_clip(model, frames, [TEXTS[0]])[0]
    assert model._visual_cache[1] is None
    assert torch.equal(again.pred_instances.masks, ref[0].pred_instances.masks)


def test_bad_amp_value():
    with pytest.raises(ValueError, match="test_cfg.amp must be None, 'fp16'"):
        init_model(
            'configs/dmformer/dmformer_tiny_synthetic.py',
            cfg_options={'model.test_cfg.amp': 'fp8'})
