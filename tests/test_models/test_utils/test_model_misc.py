# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from dmformer.models.utils import flatten_mlvl, get_valid_ratio, masked_mean


def test_masked_mean():
    x = torch.tensor([[[1., 2.], [3., 4.], [100., 100.]],
                      [[5., 6.], [7., 8.], [9., 10.]]])
    pad = torch.tensor([[False, False, True], [False, False, False]])
    out = masked_mean(x, pad)
    assert torch.allclose(out, torch.tensor([[2., 3.], [7., 8.]]))
    # a fully padded row gives zeros instead of NaN
    out = masked_mean(x, torch.ones(2, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(2, 2))
    with pytest.raises(ValueError, match='bool'):
        masked_mean(x, pad.long())
    with pytest.raises(ValueError, match='shape'):
        masked_mean(x, pad[:, :2])


def test_get_valid_ratio():
    mask = torch.zeros(2, 4, 8, dtype=torch.bool)
    mask[1, 3:, :] = True  # 3 valid rows
    mask[1, :, 6:] = True  # 6 valid columns
    ratio = get_valid_ratio(mask)
    assert torch.allclose(ratio, torch.tensor([[1., 1.], [0.75, 0.75]]))


def test_flatten_mlvl():
    a = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2)
    b = torch.zeros(2, 3, 1, 1)
    flat = flatten_mlvl([a, b])
    assert flat.shape == (2, 5, 3)
    # token (y=0, x=1) of level 0 = a[:, :, 0, 1]
    assert torch.equal(flat[:, 1], a[:, :, 0, 1])
    masks = flatten_mlvl([torch.zeros(2, 2, 2, dtype=torch.bool),
                          torch.ones(2, 1, 1, dtype=torch.bool)])
    assert masks.shape == (2, 5) and masks[:, 4].all() and \
        not masks[:, :4].any()
    with pytest.raises(ValueError, match='4-D'):
        flatten_mlvl([torch.zeros(2, 3)])
