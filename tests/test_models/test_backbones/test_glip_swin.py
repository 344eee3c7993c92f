# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn as nn

from dmformer.models.backbones import GLIPSwinTransformer

TINY = dict(
    embed_dims=16,
    depths=(1, 1, 1, 1),
    num_heads=(1, 2, 2, 4),
    window_size=4,
    drop_path_rate=0.5)


def test_shapes_and_glip_norm0():
    model = GLIPSwinTransformer(**TINY, frozen=False)
    assert isinstance(model.norm0, nn.Identity)
    assert isinstance(model.norm1, nn.LayerNorm)
    outs = model(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 16, 24), (2, 32, 8, 12),
                                              (2, 64, 4, 6), (2, 128, 2, 3)]
    with_norm = GLIPSwinTransformer(
        **TINY, frozen=False, norm_first_output=True)
    assert isinstance(with_norm.norm0, nn.LayerNorm)


def test_swin_t_parameter_count():
    model = GLIPSwinTransformer(
        embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
    # the official model's count of GLIP's Swin-T (without norm0)
    assert sum(p.numel() for p in model.parameters()) == 27_520_506


@pytest.mark.parametrize('frozen_eval', [True, False])
def test_frozen_modes(frozen_eval):
    model = GLIPSwinTransformer(**TINY, frozen=True, frozen_eval=frozen_eval)
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert model.training is (not frozen_eval)
    assert all(m.training is (not frozen_eval) for m in model.modules())
    x = torch.randn(1, 3, 64, 64)
    # drop-path is random only when the frozen network runs in train mode
    same = torch.equal(model(x)[-1], model(x)[-1])
    assert same is frozen_eval


def test_rmhca_language_fusion():
    model = GLIPSwinTransformer(
        **TINY,
        frozen=True,
        lang_fusion=dict(type='RMHCA', embed_dims=32, num_heads=2,
                         stages=(2, 3)))
    assert len(model.lang_fusion) == 2
    # RMHCA stays trainable inside a frozen backbone
    assert all(p.requires_grad for p in model.lang_fusion.parameters())
    model.train()
    assert model.lang_fusion.training and not model.stages.training
    lang = dict(
        word_feats=torch.randn(1, 5, 32),
        word_pad_mask=torch.zeros(1, 5, dtype=torch.bool),
        text_pos=torch.zeros(1, 5, 32))
    outs = model(torch.randn(2, 3, 64, 64), lang=lang, num_frames=2)
    outs[-1].sum().backward()
    assert all(p.grad is not None for p in model.lang_fusion.parameters())
    with pytest.raises(ValueError, match='text features'):
        model(torch.randn(2, 3, 64, 64))
