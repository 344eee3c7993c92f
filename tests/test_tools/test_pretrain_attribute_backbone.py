# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
from mmengine.config import Config

from dmformer.testing import load_script

tool = load_script('tools/misc/pretrain_attribute_backbone.py')
CONFIG = 'configs/dmformer/dmformer_tiny_synthetic.py'


def test_labels_follow_the_objects():
    frames, labels = tool.make_frames(7, 0, 2, 48)
    assert frames.shape == (10, 3, 48, 48) and labels.shape == (10, 4, 48, 48)
    values = tool.attribute_values()
    for k, attr in enumerate(values):
        assert 0 <= labels[:, k].min() and \
            labels[:, k].max() <= len(values[attr])
    # every attribute labels the same pixels: the objects'
    on_obj = labels > 0
    assert torch.equal(on_obj[:, 0], on_obj[:, 1])
    assert on_obj.any() and not on_obj.all()


def test_data_seeds_are_refused(tmp_path):
    with pytest.raises(SystemExit, match='seed of the built-in data'):
        tool.main([CONFIG, str(tmp_path / 'x.pth'), '--seed', '0'])


def test_pretrained_backbone_loads_into_the_model(tmp_path):
    """A short run writes backbone weights that the config's model loads
    with ``init_cfg=Pretrained``; colour (the easiest attribute) is learnt
    from chance within the run."""
    from dmformer.registry import MODELS
    from dmformer.utils import register_all_modules
    out = str(tmp_path / 'attr.pth')
    accs = tool.main([
        CONFIG, out, '--steps', '150', '--num-videos', '12',
        '--batch-size', '8', '--size', '64', '--log-interval', '150'
    ])
    assert set(accs) == {'shape', 'colour', 'size', 'texture'}
    assert accs['colour'] > 0.5  # 6 colours: chance is 1/6
    saved = torch.load(out, weights_only=True)['state_dict']
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=out, prefix='backbone.')
    model = MODELS.build(cfg.model)
    model.init_weights()
    backbone = model.backbone.state_dict()
    assert set(saved) == {f'backbone.{k}' for k in backbone}
    for key, value in backbone.items():
        assert torch.equal(value, saved[f'backbone.{key}']), key


def test_shipped_backbone_loads_into_its_config():
    """The attribute-pretrained tiny Swin shipped in ``checkpoints/`` is
    what ``dmformer_tiny_synthetic_attr-pretrained.py`` starts from, and
    the config freezes it."""
    from dmformer.registry import MODELS
    from dmformer.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        'configs/dmformer/dmformer_tiny_synthetic_attr-pretrained.py')
    path = cfg.model.backbone.init_cfg.checkpoint
    saved = torch.load(path, weights_only=True)['state_dict']
    model = MODELS.build(cfg.model)
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, saved[f'backbone.{key}']), key
    assert not any(p.requires_grad for p in model.backbone.parameters())
