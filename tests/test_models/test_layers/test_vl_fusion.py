# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from dmformer.models.layers import VisionLanguageFusion


def test_vl_fusion_param_count_and_shape():
    fusion = VisionLanguageFusion(256, 8)
    assert sum(p.numel() for p in fusion.parameters()) == 263168
    out = fusion(torch.randn(2, 7, 256), torch.randn(2, 3, 256))
    assert out.shape == (2, 7, 256)


def test_vl_fusion_value_and_masking():
    torch.manual_seed(0)
    fusion = VisionLanguageFusion(16, 2).eval()
    x = torch.randn(1, 5, 16)
    text = torch.randn(1, 3, 16)
    pos = torch.randn(1, 3, 16)
    pad = torch.tensor([[False, True, True]])
    out = fusion(x, text, pad, pos)
    # a single valid key: softmax = 1 -> attn = out_proj(v_proj(text[0]))
    mha = fusion.multihead_attn
    w_v = mha.in_proj_weight[32:]
    b_v = mha.in_proj_bias[32:]
    value = F.linear(text[:, 0], w_v, b_v)
    attn = F.linear(value, mha.out_proj.weight, mha.out_proj.bias)
    assert torch.allclose(out, x * attn[:, None], atol=1e-5)
    # padded keys are ignored whatever their content
    text2 = text.clone()
    text2[:, 1:] = 1e3
    assert torch.allclose(out, fusion(x, text2, pad, pos), atol=1e-5)
    # without the mask the result differs
    assert not torch.allclose(out, fusion(x, text, None, pos), atol=1e-3)
    with pytest.raises(ValueError, match='bool'):
        fusion(x, text, pad.long(), pos)
