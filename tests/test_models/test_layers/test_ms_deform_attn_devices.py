# Copyright (c) OpenMMLab. All rights reserved.
"""Multi-scale deformable attention: mmcv's PyTorch path (CPU tensors) and
DMFormer's gather path (CPU inference) are checked against an independent
bilinear-sampling reference, the compiled CUDA kernel (GPU tensors) against
the PyTorch path, and :class:`MSDeformAttn` against mmcv's module."""
import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmcv.ops.multi_scale_deform_attn import \
    multi_scale_deformable_attn_pytorch
from mmdet.models.layers.transformer import (
    DeformableDetrTransformerDecoder, DeformableDetrTransformerEncoderLayer)

from dmformer.models.layers import (DeformableDecoder, DeformableEncoderLayer,
                                    MSDeformAttn,
                                    multi_scale_deformable_attn_gather)

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


def _edge_locations(locations, shapes):
    """Put some points exactly on cell centres, cell borders, the map's
    edges and outside it, where the bilinear neighbours change."""
    h, w = shapes[0]
    special = torch.tensor([[0., 0.], [1., 1.], [0.5 / w, 0.5 / h],
                            [1. / w, 2. / h], [1.05, 0.5], [-0.03, 0.2],
                            [1 - 0.5 / w, 1 - 0.5 / h], [0.5, -0.2]])
    flat = locations.view(-1, 2)
    flat[:len(special)] = special.to(flat)
    return locations


@pytest.mark.parametrize('chunk_size', [8192, 2])
def test_gather_path_matches_references(chunk_size):
    """In one chunk per sample, and in chunks of 2 of the 3 queries."""
    value, locations, weights = (t.double() for t in _inputs('cpu'))
    locations = _edge_locations(locations, SHAPES)
    shapes = torch.tensor(SHAPES)
    out = multi_scale_deformable_attn_gather(
        value, shapes, locations, weights, chunk_size=chunk_size)
    expected = _reference(value, SHAPES, locations, weights)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    pytorch_path = multi_scale_deformable_attn_pytorch(
        value, shapes, locations, weights)
    torch.testing.assert_close(out, pytorch_path, rtol=0, atol=1e-12)


def test_gather_path_low_precision_table():
    """A bf16 value table (CPU autocast) with float32 weights."""
    value, locations, weights = _inputs('cpu')
    shapes = torch.tensor(SHAPES)
    out = multi_scale_deformable_attn_gather(value.bfloat16(), shapes,
                                             locations, weights)
    assert out.dtype == torch.bfloat16
    expected = multi_scale_deformable_attn_pytorch(value, shapes, locations,
                                                   weights)
    torch.testing.assert_close(out.float(), expected, rtol=0, atol=0.05)


def _modules(batch_first=True, chunk_size=8192):
    torch.manual_seed(0)
    cfg = dict(
        embed_dims=16,
        num_heads=2,
        num_levels=2,
        num_points=3,
        batch_first=batch_first)
    ref = MultiScaleDeformableAttention(**cfg)
    for param in ref.parameters():  # non-trivial offsets and weights
        torch.nn.init.normal_(param, std=0.3)
    ours = MSDeformAttn(**cfg, chunk_size=chunk_size)
    ours.load_state_dict(ref.state_dict())
    return ref.double().eval(), ours.double().eval()


@pytest.mark.parametrize('ref_dims', [2, 4])
@pytest.mark.parametrize('batch_first', [True, False])
@pytest.mark.parametrize('chunk_size', [8192, 2])
def test_msdeformattn_equals_mmcv_module(ref_dims, batch_first, chunk_size,
                                         monkeypatch):
    """Without gradients the gather path runs (per sample and chunk of
    queries), with them mmcv's PyTorch path; both give mmcv's outputs, and
    the gradients are mmcv's."""
    from dmformer.models.layers import ms_deform_attn
    calls = []
    gather_rows = ms_deform_attn._gather_rows

    def counted(*args):
        calls.append((torch.is_grad_enabled(), args[4].size(0)))
        return gather_rows(*args)

    monkeypatch.setattr(ms_deform_attn, '_gather_rows', counted)
    ref, ours = _modules(batch_first, chunk_size)
    num_keys = sum(h * w for h, w in SHAPES)
    gen = torch.Generator().manual_seed(1)
    query = torch.randn(2, 5, 16, generator=gen, dtype=torch.float64)
    value = torch.randn(2, num_keys, 16, generator=gen, dtype=torch.float64)
    mask = torch.zeros(2, num_keys, dtype=torch.bool)
    mask[1, -3:] = True
    ref_points = torch.rand(2, 5, 2, ref_dims, generator=gen,
                            dtype=torch.float64)
    if not batch_first:
        query, value = query.transpose(0, 1), value.transpose(0, 1)
    kwargs = dict(
        value=value,
        key_padding_mask=mask,
        reference_points=ref_points,
        spatial_shapes=torch.tensor(SHAPES),
        level_start_index=torch.tensor([0, SHAPES[0][0] * SHAPES[0][1]]))
    with torch.no_grad():
        expected = ref(query, **kwargs)
        out = ours(query, **kwargs)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)

    grads = []
    for module in (ref, ours):
        module.zero_grad()
        module(query, **kwargs).square().sum().backward()
        grads.append([p.grad for p in module.parameters()])
    # the gather ran without gradients only: per sample, 5 or 2 + 2 + 1
    # queries at a time
    assert calls == [(False, 5)] * 2 if chunk_size > 5 else \
        [(False, 2), (False, 2), (False, 1)] * 2
    for g_ref, g_ours in zip(*grads):
        torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-12)


def test_encoder_layer_is_mmdets_with_msdeformattn():
    """Same modules, parameter names and initial values as mmdet's layer;
    only the attention class differs."""
    cfg = dict(
        self_attn_cfg=dict(embed_dims=16, num_heads=2, num_levels=2),
        ffn_cfg=dict(embed_dims=16, feedforward_channels=32))
    torch.manual_seed(0)
    ref = DeformableDetrTransformerEncoderLayer(**cfg)
    torch.manual_seed(0)
    ours = DeformableEncoderLayer(**cfg)
    assert type(ours.self_attn) is MSDeformAttn
    ref_state, our_state = ref.state_dict(), ours.state_dict()
    assert list(ref_state) == list(our_state)
    for key, value in ref_state.items():
        assert torch.equal(our_state[key], value), key


def test_decoder_is_mmdets_with_msdeformattn(monkeypatch):
    """Same modules, parameter names and initial values as mmdet's decoder;
    only the cross-attention class differs. Without gradients (the gather
    path) the outputs are mmdet's."""
    from dmformer.models.layers import ms_deform_attn
    calls = []
    gather_rows = ms_deform_attn._gather_rows

    def counted(*args):
        calls.append(1)
        return gather_rows(*args)

    monkeypatch.setattr(ms_deform_attn, '_gather_rows', counted)
    cfg = dict(
        num_layers=2,
        post_norm_cfg=None,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=16, num_heads=2),
            cross_attn_cfg=dict(embed_dims=16, num_heads=2, num_levels=2),
            ffn_cfg=dict(embed_dims=16, feedforward_channels=32)))
    torch.manual_seed(0)
    ref = DeformableDetrTransformerDecoder(**cfg)
    torch.manual_seed(0)
    ours = DeformableDecoder(**cfg)
    assert all(type(layer.cross_attn) is MSDeformAttn for layer in ours.layers)
    ref_state, our_state = ref.state_dict(), ours.state_dict()
    assert list(ref_state) == list(our_state)
    for key, value in ref_state.items():
        assert torch.equal(our_state[key], value), key
    ref, ours = ref.double().eval(), ours.double().eval()
    gen = torch.Generator().manual_seed(2)
    num_keys = sum(h * w for h, w in SHAPES)
    inputs = dict(
        query=torch.randn(2, 3, 16, generator=gen, dtype=torch.float64),
        query_pos=torch.randn(2, 3, 16, generator=gen, dtype=torch.float64),
        value=torch.randn(2, num_keys, 16, generator=gen,
                          dtype=torch.float64),
        key_padding_mask=torch.zeros(2, num_keys, dtype=torch.bool),
        reference_points=torch.rand(2, 3, 4, generator=gen,
                                    dtype=torch.float64) * 0.5 + 0.25,
        spatial_shapes=torch.tensor(SHAPES),
        level_start_index=torch.tensor([0, SHAPES[0][0] * SHAPES[0][1]]),
        valid_ratios=torch.ones(2, 2, 2, dtype=torch.float64))
    expected = ref(**inputs)
    with torch.no_grad():
        out = ours(**inputs)
    assert len(calls) == 2 * 2  # 2 layers x 2 samples
    for got, want in zip(out, expected):
        torch.testing.assert_close(got, want.detach(), rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='requires CUDA')
def test_msdeformattn_cuda_agrees_with_cpu():
    ref, ours = _modules()
    ours = ours.float()
    num_keys = sum(h * w for h, w in SHAPES)
    query = torch.randn(2, 5, 16)
    value = torch.randn(2, num_keys, 16)
    kwargs = dict(
        reference_points=torch.rand(2, 5, 2, 2),
        spatial_shapes=torch.tensor(SHAPES),
        level_start_index=torch.tensor([0, SHAPES[0][0] * SHAPES[0][1]]))
    with torch.no_grad():
        expected = ours(query, value=value, **kwargs)
        out = ours.cuda()(query.cuda(), value=value.cuda(),
                          **{k: v.cuda() for k, v in kwargs.items()})
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=1e-5)


def test_msdeformattn_rejects_bad_chunk_size():
    with pytest.raises(ValueError, match='chunk_size must be positive'):
        MSDeformAttn(embed_dims=16, num_heads=2, chunk_size=0)


def test_msdeformattn_runs_float32_under_cuda_bf16_autocast(monkeypatch):
    """mmcv's CUDA kernel has no bfloat16 version: under CUDA bf16 autocast
    the module gets float32 inputs with autocast off. Here the CUDA check is
    forced on CPU, where mmcv's path runs on the same float32 inputs."""
    from dmformer.models.layers import ms_deform_attn
    assert not ms_deform_attn._cuda_bf16_autocast(torch.zeros(1))  # CPU
    _, ours = _modules()
    ours = ours.float()
    num_keys = sum(h * w for h, w in SHAPES)
    gen = torch.Generator().manual_seed(2)
    query = torch.randn(2, 5, 16, generator=gen)
    value = torch.randn(2, num_keys, 16, generator=gen)
    kwargs = dict(
        reference_points=torch.rand(2, 5, 2, 2, generator=gen),
        spatial_shapes=torch.tensor(SHAPES),
        level_start_index=torch.tensor([0, SHAPES[0][0] * SHAPES[0][1]]))
    with torch.no_grad():
        expected = ours(query, value=value, **kwargs)
    seen = []
    mmcv_forward = MultiScaleDeformableAttention.forward

    def spy(self, query, **kw):
        seen.append((query.dtype, kw['value'].dtype,
                     kw['reference_points'].dtype))
        return mmcv_forward(self, query, **kw)

    monkeypatch.setattr(MultiScaleDeformableAttention, 'forward', spy)
    monkeypatch.setattr(ms_deform_attn, '_cuda_bf16_autocast',
                        lambda query: True)
    with torch.no_grad():
        out = ours(query.bfloat16(), value=value.bfloat16(), **kwargs)
    assert seen == [(torch.float32, ) * 3]
    assert out.dtype == torch.float32
    # the inputs were rounded to bf16 once, the attention ran in float32
    torch.testing.assert_close(out, expected, rtol=0.02, atol=0.02)
