# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from dmformer.models.layers import RMHCA


def test_rmhca_param_counts():
    assert sum(p.numel() for p in RMHCA(384).parameters()) == 460416
    assert sum(p.numel() for p in RMHCA(768).parameters()) == 657408


def test_rmhca_forward():
    torch.manual_seed(0)
    m = RMHCA(12, embed_dims=16, num_heads=2).eval()
    x = torch.randn(4, 6, 12)  # B=2 videos x T=2 frames
    text = torch.randn(2, 3, 16)
    pad = torch.tensor([[False, False, True], [False, False, False]])
    out = m(x, text, pad, None, num_frames=2)
    assert out.shape == x.shape
    # fusion over all frames of a video: same as fusing the video's tokens
    y = m.in_proj(x[:2]).reshape(1, 12, 16)
    y = m.fusion(y, text[:1], pad[:1])
    expected = x[:2] + m.out_proj(y).reshape(2, 6, 12)
    assert torch.allclose(out[:2], expected, atol=1e-5)
    # residual: a zero output projection gives the identity
    torch.nn.init.zeros_(m.out_proj.weight)
    torch.nn.init.zeros_(m.out_proj.bias)
    assert torch.equal(m(x, text, pad, None, num_frames=2), x)
    with pytest.raises(ValueError, match='num_frames'):
        m(x, text, pad, None, num_frames=3)
