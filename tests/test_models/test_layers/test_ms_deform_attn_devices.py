# Copyright (c) OpenMMLab. All rights reserved.
"""mmcv's MultiScaleDeformableAttention: its PyTorch path (CPU tensors) is
checked against an independent bilinear-sampling reference, and its compiled
CUDA kernel (GPU tensors) against the PyTorch path."""
import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmcv.ops.multi_scale_deform_attn import \
    multi_scale_deformable_attn_pytorch

SHAPES = [(6, 8), (3, 4)]


def _bilinear(img, x, y):
    """Sample img (C, H, W) at continuous pixel coords, zero outside."""
    _, h, w = img.shape
    x0, y0 = int(torch.floor(x)), int(torch.floor(y))
    out = img.new_zeros(img.shape[0])
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wx = 1 - abs(x - xi)
            wy = 1 - abs(y - yi)
            if 0 <= xi < w and 0 <= yi < h:
                out += wx * wy * img[:, yi, xi]
    return out


def _reference(value, shapes, locations, weights):
    bs, _, heads, dims = value.shape
    _, nq, _, levels, points, _ = locations.shape
    out = value.new_zeros(bs, nq, heads, dims)
    starts = [0]
    for h, w in shapes[:-1]:
        starts.append(starts[-1] + h * w)
    for b in range(bs):
        for q in range(nq):
            for m in range(heads):
                for lvl, (h, w) in enumerate(shapes):
                    img = value[b, starts[lvl]:starts[lvl] + h * w,
                                m].t().reshape(dims, h, w)
                    for p in range(points):
                        x, y = locations[b, q, m, lvl, p]
                        # normalised -> pixel, align_corners=False
                        sample = _bilinear(img, x * w - 0.5, y * h - 0.5)
                        out[b, q, m] += weights[b, q, m, lvl, p] * sample
    return out.flatten(2)


def _inputs(device):
    torch.manual_seed(0)
    bs, nq, heads, dims, points = 2, 3, 2, 4, 3
    num_keys = sum(h * w for h, w in SHAPES)
    value = torch.randn(bs, num_keys, heads, dims, device=device)
    locations = torch.rand(
        bs, nq, heads, len(SHAPES), points, 2, device=device) * 1.2 - 0.1
    weights = torch.rand(bs, nq, heads, len(SHAPES), points, device=device)
    weights = weights / weights.flatten(-2).sum(-1)[..., None, None]
    return value, locations, weights


def test_pytorch_path_matches_bilinear_reference():
    value, locations, weights = _inputs('cpu')
    shapes = torch.tensor(SHAPES)
    out = multi_scale_deformable_attn_pytorch(value, shapes, locations,
                                              weights)
    expected = _reference(value, SHAPES, locations, weights)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('device', [
    'cpu',
    pytest.param(
        'cuda',
        marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason='requires CUDA')),
])
def test_module_dispatch_agrees_with_pytorch_path(device):
    """The module runs the compiled kernel on CUDA tensors and the PyTorch
    path on CPU tensors; both must give the CPU PyTorch path's result."""
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(
        embed_dims=16, num_heads=2, num_levels=2, num_points=3,
        batch_first=True).eval()
    num_keys = sum(h * w for h, w in SHAPES)
    query = torch.randn(2, 5, 16)
    value = torch.randn(2, num_keys, 16)
    ref_points = torch.rand(2, 5, 2, 2)
    shapes = torch.tensor(SHAPES)
    start = torch.tensor([0, SHAPES[0][0] * SHAPES[0][1]])
    with torch.no_grad():
        expected = attn(query, value=value, reference_points=ref_points,
                        spatial_shapes=shapes, level_start_index=start)
        dev = attn.to(device)
        out = dev(query.to(device), value=value.to(device),
                  reference_points=ref_points.to(device),
                  spatial_shapes=shapes.to(device),
                  level_start_index=start.to(device))
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=1e-5)
