# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
from mmengine.structures import InstanceData

from dmformer.models.data_preprocessors import RVOSDataPreprocessor
from dmformer.registry import MODELS
from dmformer.structures.rvos_data_sample import RVOSDataSample


def make_batch(shapes, num_frames=2, with_masks=True):
    inputs, samples = [], []
    for i, (h, w) in enumerate(shapes):
        clip = torch.zeros((num_frames, 3, h, w), dtype=torch.uint8)
        clip[:, 0], clip[:, 1], clip[:, 2] = 10, 20, 30 + i  # B, G, R
        inputs.append(clip)
        sample = RVOSDataSample(metainfo=dict(img_shape=(h, w)))
        if with_masks:
            sample.gt_instances = InstanceData(
                masks=torch.ones((num_frames, h, w), dtype=torch.bool))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_normalise_and_pad():
    pre = RVOSDataPreprocessor(
        mean=(1., 2., 3.), std=(2., 4., 8.), pad_value=-7)
    out = pre(make_batch([(20, 40), (33, 30)]), training=False)
    inputs = out['inputs']
    # (B, T, 3, Hp, Wp): max (33, 40) padded to multiples of 32
    assert inputs.shape == (2, 2, 3, 64, 64) and inputs.dtype == torch.float32
    # BGR -> RGB, then (x - mean) / std: R = 30, G = 20, B = 10
    assert inputs[0, 1, :, 0, 0].tolist() == [(30 - 1) / 2, (20 - 2) / 4,
                                              (10 - 3) / 8]
    assert inputs[1, 0, 0, 5, 5].item() == (31 - 1) / 2
    # padding (bottom / right) holds pad_value
    assert (inputs[0, :, :, 20:] == -7).all()
    assert (inputs[0, :, :, :, 40:] == -7).all()
    assert (inputs[0, :, :, :20, :40] != -7).all()
    assert (inputs[1, :, :, 33:] == -7).all()
    for sample, pad_shape in zip(out['data_samples'], [(32, 64), (64, 32)]):
        assert sample.batch_input_shape == (64, 64)
        assert sample.pad_shape == pad_shape
        # test time: masks untouched
        assert sample.gt_instances.masks.shape[-2:] == sample.img_shape


def test_default_imagenet_and_no_conversion():
    pre = RVOSDataPreprocessor(bgr_to_rgb=False, pad_size_divisor=1)
    out = pre(make_batch([(3, 5)]))
    assert out['inputs'].shape == (1, 2, 3, 3, 5)
    expected = (10 - 123.675) / 58.395  # channel 0 kept as is
    assert out['inputs'][0, 0, 0, 0, 0].item() == pytest.approx(expected)


def test_training_pads_masks():
    pre = RVOSDataPreprocessor()
    out = pre(make_batch([(20, 40), (33, 30)]), training=True)
    for sample, (h, w) in zip(out['data_samples'], [(20, 40), (33, 30)]):
        masks = sample.gt_instances.masks
        assert masks.shape == (2, 64, 64) and masks.dtype == torch.bool
        assert masks[:, :h, :w].all()
        assert masks.sum() == 2 * h * w
    # a sample without gt is left alone
    batch = make_batch([(8, 8)], with_masks=False)
    out = pre(batch, training=True)
    assert 'gt_instances' not in out['data_samples'][0]


def test_stacked_tensor_input_and_build():
    pre = MODELS.build(dict(type='RVOSDataPreprocessor'))
    assert isinstance(pre, RVOSDataPreprocessor)
    batch = make_batch([(16, 16), (16, 16)])
    batch['inputs'] = torch.stack(batch['inputs'])
    out = pre(batch)
    assert out['inputs'].shape == (2, 2, 3, 32, 32)


def test_errors():
    pre = RVOSDataPreprocessor()
    batch = make_batch([(8, 8), (8, 8)])
    batch['inputs'][1] = batch['inputs'][1][:1]
    with pytest.raises(ValueError, match='same number of frames'):
        pre(batch)
    batch = make_batch([(8, 8)])
    batch['inputs'][0] = batch['inputs'][0][:, :1]
    with pytest.raises(ValueError, match=r'\(T, 3, H, W\)'):
        pre(batch)
    # training masks larger than the inputs
    batch = make_batch([(8, 8)])
    batch['data_samples'][0].gt_instances.masks = torch.ones(2, 40, 8).bool()
    with pytest.raises(ValueError, match='larger than the batch'):
        pre(batch, training=True)
