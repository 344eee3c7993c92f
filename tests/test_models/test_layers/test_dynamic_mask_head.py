# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from dmformer.models.layers import DynamicMaskHead


def _reference_dynamic_masks(head, mask_feats, params, ref_points,
                             img_shapes):
    """Literal port of ReferFormer's ``dynamic_mask_with_coords``."""
    b, t, c, h, w = mask_feats.shape
    q = params.size(2)
    scale = torch.tensor([[iw, ih] for ih, iw in img_shapes],
                         dtype=torch.float32)
    ref = ref_points * scale[:, None, None, :]
    s = head.mask_feat_stride
    xs = torch.arange(0, w * s, s, dtype=torch.float32)
    ys = torch.arange(0, h * s, s, dtype=torch.float32)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    loc = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1) + s // 2
    rel = ref.reshape(b, t, q, 1, 1, 2) - loc.reshape(1, 1, 1, h, w, 2)
    rel = rel.permute(0, 1, 2, 5, 3, 4)
    feats = mask_feats[:, :, None].expand(b, t, q, c, h, w)
    feats = torch.cat([feats, rel], dim=3).reshape(1, -1, h, w)
    flat = params.reshape(b * t * q, -1)
    n = flat.size(0)
    splits = list(
        torch.split_with_sizes(flat, head.weight_nums + head.bias_nums, 1))
    nl = len(head.weight_nums)
    x = feats
    for i in range(nl):
        out = head.bias_nums[i]
        weight = splits[i].reshape(n * out, -1, 1, 1)
        bias = splits[nl + i].reshape(n * out)
        x = F.conv2d(x, weight, bias=bias, groups=n)
        if i < nl - 1:
            x = F.relu(x)
    return x.reshape(b, t, q, h, w)


def test_param_counts():
    head = DynamicMaskHead()
    assert head.num_gen_params == 2153
    assert head.weight_nums == [258 * 8, 64, 8]
    assert head.bias_nums == [8, 8, 1]
    assert sum(p.numel() for p in head.parameters()) == 684905
    head.init_weights()
    for layer in head.controller.layers:
        assert torch.all(layer.bias == 0)
    with pytest.raises(ValueError, match='controller_layers'):
        DynamicMaskHead(controller_layers=1)


def test_matches_grouped_conv_reference():
    torch.manual_seed(0)
    head = DynamicMaskHead(in_channels=16, query_channels=32)
    head.init_weights()
    b, t, q, h, w = 2, 3, 4, 5, 7
    mask_feats = torch.randn(b, t, 16, h, w)
    query_feats = torch.randn(b, t, q, 32)
    ref_points = torch.rand(b, t, q, 2)
    img_shapes = [(20, 26), (17, 28)]
    out = head(query_feats, mask_feats, ref_points, img_shapes)
    assert out.shape == (b, t, q, h, w)
    params = head.controller(query_feats)
    expected = _reference_dynamic_masks(head, mask_feats, params, ref_points,
                                        img_shapes)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_relative_coordinates_in_pixels():
    head = DynamicMaskHead(in_channels=4, query_channels=8,
                           dynamic_mask_channels=2)
    b, t, q, h, w = 1, 1, 1, 3, 8
    params = torch.zeros(b, t, q, head.num_gen_params)
    # layer 0 weight (2, 4 + 2): out channel 0 <- the x coordinate channel
    params[..., 4] = 1.
    # layer 1 weight (2, 2) starts at 12: out 0 <- in 0
    params[..., 12] = 1.
    # layer 2 weight (1, 2) starts at 16: out <- in 0
    params[..., 16] = 1.
    # the last parameter is the bias of the last layer (weights first)
    params[..., -1] = 0.5
    mask_feats = torch.randn(b, t, 4, h, w)
    ref = torch.tensor([0.5, 0.25]).view(1, 1, 1, 2)
    out = head.dynamic_mask_forward(mask_feats, params, ref, [(24, 40)])
    # relu(cx * img_w - (x * 4 + 2)) = relu(20 - 4x - 2) + 0.5, any row
    expected_row = torch.clamp(18. - 4. * torch.arange(w), min=0) + 0.5
    for y in range(h):
        torch.testing.assert_close(out[0, 0, 0, y], expected_row)

    # the y channel (index 5) uses cy * img_h - (y * 4 + 2)
    params[..., 4] = 0.
    params[..., 5] = 1.
    out = head.dynamic_mask_forward(mask_feats, params, ref, [(24, 40)])
    # 0.25 * 24 = 6 -> relu(6 - 4y - 2) + 0.5 = [4.5, 0.5, 0.5]
    torch.testing.assert_close(out[0, 0, 0, :, 0],
                               torch.tensor([4.5, 0.5, 0.5]))


def test_bad_inputs():
    head = DynamicMaskHead(in_channels=4, query_channels=8)
    with pytest.raises(ValueError, match='mask feature channels'):
        head.dynamic_mask_forward(
            torch.zeros(1, 1, 5, 2, 2), torch.zeros(1, 1, 1,
                                                    head.num_gen_params),
            torch.zeros(1, 1, 1, 2), [(8, 8)])
    with pytest.raises(ValueError, match='dynamic params'):
        head.dynamic_mask_forward(
            torch.zeros(1, 1, 4, 2, 2), torch.zeros(1, 1, 1, 3),
            torch.zeros(1, 1, 1, 2), [(8, 8)])
