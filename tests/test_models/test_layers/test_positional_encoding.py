# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch

from dmformer.models.layers import SinePositionalEncoding1D


def test_sine_positional_encoding_1d_values():
    pe = SinePositionalEncoding1D(num_feats=4, temperature=10000)
    pos = pe(torch.zeros(1, 2, dtype=torch.bool))
    assert pos.shape == (1, 2, 4)
    # positions 1/2 and 2/2 of a 2-token caption, scaled by 2*pi
    x = torch.tensor([math.pi, 2 * math.pi])
    # dim_t = 10000 ** (2 * (i // 2) / 4) = [1, 1, 100, 100]
    expected = torch.stack([x.sin(), x.cos(), (x / 100).sin(),
                            (x / 100).cos()], -1)
    assert torch.allclose(pos[0], expected, atol=1e-5)


def test_sine_positional_encoding_1d_padding_invariance():
    pe = SinePositionalEncoding1D(num_feats=8)
    alone = pe(torch.zeros(1, 3, dtype=torch.bool))
    padded = pe(torch.tensor([[False, False, False, True, True],
                              [False] * 5]))
    assert padded.shape == (2, 5, 8)
    assert torch.allclose(padded[0, :3], alone[0], atol=1e-6)
    assert not torch.allclose(padded[1, :3], alone[0])
    raw = SinePositionalEncoding1D(num_feats=2, normalize=False)(
        torch.zeros(1, 3, dtype=torch.bool))
    assert torch.allclose(raw[0, :, 0], torch.tensor([1., 2., 3.]).sin())


def test_sine_positional_encoding_1d_errors():
    with pytest.raises(ValueError, match='even'):
        SinePositionalEncoding1D(num_feats=3)
    with pytest.raises(ValueError, match='bool'):
        SinePositionalEncoding1D()(torch.zeros(1, 3, dtype=torch.long))
    assert 'num_feats=256' in repr(SinePositionalEncoding1D())
