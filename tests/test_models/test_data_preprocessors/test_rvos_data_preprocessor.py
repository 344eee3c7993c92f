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


def test_test_pad_size_divisor():
    """Test batches pad to ``test_pad_size_divisor``, training batches (and
    their masks) still to ``pad_size_divisor``."""
    pre = RVOSDataPreprocessor(test_pad_size_divisor=1)
    assert (pre.pad_size_divisor, pre.test_pad_size_divisor) == (32, 1)
    shapes = [(20, 40), (33, 30)]
    out = pre(make_batch(shapes), training=False)
    # the batch's largest size, not rounded up
    assert out['inputs'].shape == (2, 2, 3, 33, 40)
    for sample, (h, w) in zip(out['data_samples'], shapes):
        assert sample.batch_input_shape == (33, 40)
        assert sample.pad_shape == sample.img_shape == (h, w)
        assert sample.gt_instances.masks.shape == (2, h, w)
    assert (out['inputs'][0, :, :, 20:] == 0).all()
    assert (out['inputs'][1, :, :, :, 30:] == 0).all()
    out = pre(make_batch(shapes), training=True)
    assert out['inputs'].shape == (2, 2, 3, 64, 64)
    for sample in out['data_samples']:
        assert sample.batch_input_shape == (64, 64)
        assert sample.gt_instances.masks.shape == (2, 64, 64)
    # a lone 360 x 640 clip (Ref-YouTube-VOS at test time) runs unpadded, as
    # in the official inference; by default it is padded to 384 x 640
    lone = make_batch([(360, 640)], num_frames=1, with_masks=False)
    out = pre(lone, training=False)
    assert out['inputs'].shape == (1, 1, 3, 360, 640)
    assert out['data_samples'][0].pad_shape == (360, 640)
    out = RVOSDataPreprocessor()(lone, training=False)
    assert out['inputs'].shape == (1, 1, 3, 384, 640)
    assert out['data_samples'][0].pad_shape == (384, 640)


def test_test_pad_size_divisor_defaults_to_training_one():
    pre = RVOSDataPreprocessor(pad_size_divisor=16)
    assert pre.test_pad_size_divisor == 16
    out = pre(make_batch([(20, 40)]), training=False)
    assert out['inputs'].shape[-2:] == (32, 48)
    # both divisors given: each applies to its own mode
    pre = RVOSDataPreprocessor(pad_size_divisor=8, test_pad_size_divisor=64)
    assert pre(make_batch([(20, 40)]), training=True)['inputs'].shape[-2:] \
        == (24, 40)
    assert pre(make_batch([(20, 40)]))['inputs'].shape[-2:] == (64, 64)


@pytest.mark.parametrize('value', [0, -32, 1.5, True, '32'])
def test_bad_pad_size_divisors(value):
    with pytest.raises(ValueError, match='test_pad_size_divisor'):
        RVOSDataPreprocessor(test_pad_size_divisor=value)
    with pytest.raises(ValueError, match='pad_size_divisor'):
        RVOSDataPreprocessor(pad_size_divisor=value)


def test_paper_config_pads_to_32_in_both_modes():
    """The paper config keeps its padding at test time (pinned outputs);
    the official inference's is ``test_pad_size_divisor=1``."""
    from mmengine.config import Config
    cfg = Config.fromfile('configs/_base_/models/dmformer_swin-t.py')
    pre = MODELS.build(cfg.model.data_preprocessor)
    assert (pre.pad_size_divisor, pre.test_pad_size_divisor) == (32, 32)
