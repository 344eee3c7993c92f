# Copyright (c) OpenMMLab. All rights reserved.
import torch

from dmformer.models.layers import FeatureResizer


def test_feature_resizer():
    resizer = FeatureResizer(256, 128)
    assert sum(p.numel() for p in resizer.parameters()) == 33152
    assert resizer.layer_norm.eps == 1e-12
    resizer.eval()
    out = resizer(torch.randn(2, 5, 256))
    assert out.shape == (2, 5, 128)
    # LayerNorm with default affine params: zero mean, unit variance
    assert torch.allclose(out.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(
        out.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3)
    # dropout active in training only
    resizer = FeatureResizer(4, 64, dropout=0.5).train()
    assert (resizer(torch.randn(3, 4)) == 0).any()
    no_ln = FeatureResizer(4, 2, do_ln=False).eval()
    x = torch.randn(3, 4)
    assert torch.allclose(no_ln(x), no_ln.fc(x))
