# Copyright (c) OpenMMLab. All rights reserved.
"""Multi-scale deformable attention with a fast CPU inference path."""
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.models.layers.transformer import (
    DeformableDetrTransformerDecoder, DeformableDetrTransformerDecoderLayer,
    DeformableDetrTransformerEncoderLayer)
from mmengine.model import ModuleList
from torch import Tensor

from dmformer.registry import MODELS


def _gather_rows(table: Tensor, row_offset: int, spatial_shapes: Tensor,
                 level_starts: Tensor, sampling_locations: Tensor,
                 attention_weights: Tensor) -> Tensor:
    """The attention of a chunk of queries of one sample and all heads.

    Args:
        table (Tensor): The value of all samples as rows of one head,
            (bs * num_value * num_heads, head_dims), i.e. the
            (bs, num_value, num_heads, head_dims) value flattened.
        row_offset (int): Row of this sample's first value in ``table``.
        spatial_shapes (Tensor): Long (num_levels, 2), (h, w) per level.
        level_starts (Tensor): Long (num_levels, ), index of each level's
            first value among a sample's ``num_value``.
        sampling_locations (Tensor): (num_queries, num_heads, num_levels,
            num_points, 2), normalised (x, y).
        attention_weights (Tensor): (num_queries, num_heads, num_levels,
            num_points).

    Returns:
        Tensor: (num_queries * num_heads, head_dims).
    """
    num_queries, num_heads, num_levels, num_points, _ = \
        sampling_locations.shape
    # per-level constants as contiguous (num_heads, num_levels, num_points)
    # tensors: broadcast over the queries only, the element-wise kernels
    # stay vectorised (a (num_levels, 1) operand made them 5-20x slower)
    shape = (num_heads, num_levels, num_points)

    def per_level(values: Tensor) -> Tensor:
        return values.view(1, num_levels, 1).expand(shape).contiguous()

    dtype = sampling_locations.dtype
    widths = per_level(spatial_shapes[:, 1].to(dtype))
    heights = per_level(spatial_shapes[:, 0].to(dtype))
    # cell coordinates as mmcv's CUDA kernel computes them; grid_sample's
    # ((2 * loc - 1 + 1) * size - 1) / 2 is the same up to rounding
    x = sampling_locations[..., 0] * widths - 0.5
    y = sampling_locations[..., 1] * heights - 0.5
    x0 = x.floor()
    y0 = y.floor()
    x1 = x0 + 1
    y1 = y0 + 1
    # the neighbouring cells clamped into the map: a neighbour lies inside
    # iff clamping left it unchanged
    zero = x.new_zeros(())
    xc0 = torch.clamp(x0, zero, widths - 1)
    xc1 = torch.clamp(x1, zero, widths - 1)
    yc0 = torch.clamp(y0, zero, heights - 1)
    yc1 = torch.clamp(y1, zero, heights - 1)
    # bilinear weight of each neighbour (zero outside the map), times the
    # attention weight; the subtractions are exact, so 1 - fx is x0 + 1 - x
    fx = x - x0
    fy = y - y0
    wx0 = (1 - fx).mul_(xc0 == x0)
    wx1 = fx.mul_(xc1 == x1)
    wy0 = (1 - fy).mul_(yc0 == y0).mul_(attention_weights)
    wy1 = fy.mul_(yc1 == y1).mul_(attention_weights)
    # table row of each neighbour, (value index) * num_heads + head; int32
    # halves the traffic of int64
    heads = torch.arange(num_heads, device=table.device).view(num_heads, 1)
    base = (heads + level_starts * num_heads + row_offset).int()
    base = base.view(num_heads, num_levels, 1).expand(shape).contiguous()
    row_len = per_level((spatial_shapes[:, 1] * num_heads).int())
    xi0 = xc0.int().mul_(num_heads)
    xi1 = xc1.int().mul_(num_heads)
    yi0 = yc0.int().mul_(row_len).add_(base)
    yi1 = yc1.int().mul_(row_len).add_(base)
    # the 4 neighbours of a point are adjacent cells of its bag; writing
    # into the strided slices is faster than stacking
    weights = wx0.new_empty(wx0.shape + (4, ))
    index = xi0.new_empty(xi0.shape + (4, ))
    for k, (wy, wx, yi, xi) in enumerate(
        ((wy0, wx0, yi0, xi0), (wy0, wx1, yi0, xi1), (wy1, wx0, yi1, xi0),
         (wy1, wx1, yi1, xi1))):
        torch.mul(wy, wx, out=weights[..., k])
        torch.add(yi, xi, out=index[..., k])
    num_cells = num_levels * num_points * 4
    return F.embedding_bag(
        index.view(-1, num_cells),
        table,
        per_sample_weights=weights.view(-1, num_cells).to(table.dtype),
        mode='sum')


def _gather_chunks(value: Tensor, spatial_shapes: Tensor,
                   attention_weights: Tensor,
                   locations_of: Callable[[int, slice], Tensor],
                   chunk_size: int) -> Tensor:
    """:func:`multi_scale_deformable_attn_gather` with the sampling
    locations of sample ``b`` and a slice of its queries given by
    ``locations_of(b, chunk)``, so that a caller can compute them chunk by
    chunk too."""
    bs, num_value, num_heads, head_dims = value.shape
    num_queries = attention_weights.size(1)
    # (bs, num_value, num_heads, head_dims) as rows: no copy
    table = value.reshape(-1, head_dims)
    areas = spatial_shapes.prod(1)
    level_starts = torch.cat((areas.new_zeros(1), areas.cumsum(0)[:-1]))
    output = value.new_empty(bs, num_queries, num_heads, head_dims)
    for b in range(bs):
        for start in range(0, num_queries, chunk_size):
            chunk = slice(start, start + chunk_size)
            output[b, chunk] = _gather_rows(
                table, b * num_value * num_heads, spatial_shapes,
                level_starts, locations_of(b, chunk),
                attention_weights[b, chunk]).view(-1, num_heads, head_dims)
    return output.view(bs, num_queries, num_heads * head_dims)


def multi_scale_deformable_attn_gather(value: Tensor,
                                       spatial_shapes: Tensor,
                                       sampling_locations: Tensor,
                                       attention_weights: Tensor,
                                       chunk_size: int = 8192) -> Tensor:
    """Multi-scale deformable attention as one weighted gather.

    The same result as mmcv's ``multi_scale_deformable_attn_pytorch``
    (bilinear sampling with ``grid_sample(align_corners=False,
    padding_mode='zeros')``, then the attention-weighted sum over levels
    and points), computed differently: the bilinear weight of each of the
    four neighbouring cells is multiplied by the attention weight, and
    :func:`torch.nn.functional.embedding_bag` sums the weighted value rows
    of all ``num_levels * num_points * 4`` cells of a query and head in one
    pass. The reference path materialises the sampled values of every
    point, ``(bs * num_heads, head_dims, num_queries, num_levels *
    num_points)``, and multiplies and sums them in a strided layout; on
    CPU that costs more than the sampling itself.

    The cell indices and weights are computed for at most ``chunk_size``
    queries of one sample at a time, so that their dozen intermediate
    tensors stay in the CPU's cache.

    Meant for inference: the backward of ``embedding_bag`` with per-sample
    weights is slower than ``grid_sample``'s, so :class:`MSDeformAttn`
    uses this function only when no gradient is needed.

    Args:
        value (Tensor): (bs, num_value, num_heads, head_dims).
        spatial_shapes (Tensor): Long (num_levels, 2), (h, w) per level.
        sampling_locations (Tensor): Normalised (x, y) in [0, 1],
            (bs, num_queries, num_heads, num_levels, num_points, 2).
        attention_weights (Tensor): (bs, num_queries, num_heads,
            num_levels, num_points).
        chunk_size (int): Queries per chunk. Defaults to 8192.

    Returns:
        Tensor: (bs, num_queries, num_heads * head_dims).
    """
    return _gather_chunks(value, spatial_shapes, attention_weights,
                          lambda b, chunk: sampling_locations[b, chunk],
                          chunk_size)


def _cuda_bf16_autocast(query: Tensor) -> bool:
    """Whether ``query`` is on a CUDA device inside a bfloat16 autocast
    region."""
    if query.device.type != 'cuda':
        return False
    try:  # torch >= 2.4
        enabled = torch.is_autocast_enabled('cuda')
        dtype = torch.get_autocast_dtype('cuda')
    except (TypeError, AttributeError):
        enabled = torch.is_autocast_enabled()
        dtype = torch.get_autocast_gpu_dtype()
    return enabled and dtype == torch.bfloat16


@MODELS.register_module()
class MSDeformAttn(MultiScaleDeformableAttention):
    """mmcv's :class:`~mmcv.ops.MultiScaleDeformableAttention` with a
    faster CPU path for inference.

    Same parameters, state-dict keys and arguments as the mmcv module.
    Whenever gradients are needed, and on any device but the CPU, mmcv's
    own forward runs (its CUDA kernel, or its PyTorch path); under CUDA
    bfloat16 autocast it runs in float32, since mmcv's kernel has no
    bfloat16 version. On CPU without
    gradients the core is :func:`multi_scale_deformable_attn_gather` (the
    same values up to float rounding, and faster: see
    docs/en/advanced_guides/speed_memory.md), with the sampling locations
    computed chunk by chunk as well.

    Args:
        chunk_size (int): Queries per chunk of the CPU inference path.
            Defaults to 8192.
        **kwargs: The arguments of mmcv's module.
    """

    def __init__(self, *args, chunk_size: int = 8192, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if chunk_size < 1:
            raise ValueError('MSDeformAttn: chunk_size must be positive, '
                             f'got {chunk_size}')
        self.chunk_size = chunk_size

    def _needs_grad(self, *inputs: Optional[Tensor]) -> bool:
        """Whether autograd will track the attention's output."""
        return torch.is_grad_enabled() and (
            any(t is not None and t.requires_grad for t in inputs)
            or any(p.requires_grad for p in self.parameters()))

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Deformable attention of ``query`` to the flattened levels of
        ``value``.

        Args:
            query (Tensor): (bs, num_queries, embed_dims) with
                ``batch_first`` (else (num_queries, bs, embed_dims)).
            key (Tensor, optional): Unused (deformable attention samples
                ``value``).
            value (Tensor, optional): (bs, num_value, embed_dims); defaults
                to ``query``.
            identity (Tensor, optional): Added to the output; defaults to
                ``query``.
            query_pos (Tensor, optional): Added to ``query``.
            key_padding_mask (Tensor, optional): Bool (bs, num_value), True
                where ``value`` is padding.
            reference_points (Tensor): (bs, num_queries, num_levels, 2)
                normalised points, or (..., 4) boxes (cx, cy, w, h).
            spatial_shapes (Tensor): Long (num_levels, 2), (h, w).
            level_start_index (Tensor): Long (num_levels, ).

        Returns:
            Tensor: Same shape as ``query``.
        """
        if _cuda_bf16_autocast(query):
            # mmcv's CUDA kernel has no bfloat16 version (float, double and
            # half only): under bf16 autocast the module runs in float32
            with torch.autocast('cuda', enabled=False):
                return super().forward(
                    query.float(),
                    key=key,
                    value=None if value is None else value.float(),
                    identity=None if identity is None else identity.float(),
                    query_pos=None
                    if query_pos is None else query_pos.float(),
                    key_padding_mask=key_padding_mask,
                    reference_points=reference_points.float(),
                    spatial_shapes=spatial_shapes,
                    level_start_index=level_start_index,
                    **kwargs)
        if query.device.type != 'cpu' or self._needs_grad(
                query, value, query_pos, reference_points):
            return super().forward(
                query,
                key=key,
                value=value,
                identity=identity,
                query_pos=query_pos,
                key_padding_mask=key_padding_mask,
                reference_points=reference_points,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                **kwargs)
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query = query.permute(1, 0, 2)
            value = value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        sampling_offsets = self.sampling_offsets(query).view(
            bs, num_query, self.num_heads, self.num_levels, self.num_points,
            2)
        attention_weights = self.attention_weights(query).view(
            bs, num_query, self.num_heads,
            self.num_levels * self.num_points).softmax(-1).view(
                bs, num_query, self.num_heads, self.num_levels,
                self.num_points)
        # mmcv's sampling locations, computed chunk by chunk with the
        # gather: (n, num_heads, num_levels, num_points, 2) for n queries
        if reference_points.shape[-1] == 2:
            # (w, h) per level as a contiguous (num_heads, num_levels,
            # num_points, 2) tensor: broadcast over the queries only, which
            # keeps the division vectorised (same values)
            normalizer = torch.stack(
                [spatial_shapes[..., 1], spatial_shapes[..., 0]],
                -1).to(sampling_offsets.dtype)[None, :, None, :].expand(
                    sampling_offsets.shape[2:]).contiguous()

            def locations_of(b: int, chunk: slice) -> Tensor:
                return reference_points[b, chunk, None, :, None, :] + \
                    sampling_offsets[b, chunk] / normalizer
        elif reference_points.shape[-1] == 4:

            def locations_of(b: int, chunk: slice) -> Tensor:
                ref = reference_points[b, chunk, None, :, None]
                return ref[..., :2] + sampling_offsets[b, chunk] / \
                    self.num_points * ref[..., 2:] * 0.5
        else:
            raise ValueError('the last dimension of reference_points must '
                             f'be 2 or 4, got {reference_points.shape[-1]}')
        output = _gather_chunks(value, spatial_shapes, attention_weights,
                                locations_of, self.chunk_size)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity


class DeformableEncoderLayer(DeformableDetrTransformerEncoderLayer):
    """mmdet's Deformable DETR encoder layer with :class:`MSDeformAttn` as
    its self-attention (same modules, names and initialisation order)."""

    def _init_layers(self) -> None:
        """Build ``self_attn``, ``ffn`` and the two norms."""
        self.self_attn = MSDeformAttn(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([
            build_norm_layer(self.norm_cfg, self.embed_dims)[1]
            for _ in range(2)
        ])


class DeformableDecoderLayer(DeformableDetrTransformerDecoderLayer):
    """mmdet's Deformable DETR decoder layer with :class:`MSDeformAttn` as
    its cross-attention (same modules, names and initialisation order).

    On CPU without gradients the cross-attention reads the memory in its
    own layout; mmcv's PyTorch path first transposes every level of it
    into a per-head layout (half of a decoder layer's time on the paper
    clip).
    """

    def _init_layers(self) -> None:
        """Build ``self_attn``, ``cross_attn``, ``ffn`` and the norms."""
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
        self.cross_attn = MSDeformAttn(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([
            build_norm_layer(self.norm_cfg, self.embed_dims)[1]
            for _ in range(3)
        ])


class DeformableDecoder(DeformableDetrTransformerDecoder):
    """mmdet's Deformable DETR decoder made of
    :class:`DeformableDecoderLayer` (same arguments, modules and names)."""

    def _init_layers(self) -> None:
        """Build the decoder layers."""
        self.layers = ModuleList([
            DeformableDecoderLayer(**self.layer_cfg)
            for _ in range(self.num_layers)
        ])
        self.embed_dims = self.layers[0].embed_dims
        if self.post_norm_cfg is not None:
            raise ValueError('There is not post_norm in '
                             f'{self._get_name()}')
