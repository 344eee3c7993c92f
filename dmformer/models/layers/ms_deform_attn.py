# Copyright (c) OpenMMLab. All rights reserved.
"""Multi-scale deformable attention with a fast CPU inference path."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.models.layers.transformer import \
    DeformableDetrTransformerEncoderLayer
from mmengine.model import ModuleList
from torch import Tensor

from dmformer.registry import MODELS


def multi_scale_deformable_attn_gather(value: Tensor, spatial_shapes: Tensor,
                                       sampling_locations: Tensor,
                                       attention_weights: Tensor) -> Tensor:
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

    Returns:
        Tensor: (bs, num_queries, num_heads * head_dims).
    """
    bs, num_value, num_heads, head_dims = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    device = sampling_locations.device
    hw = spatial_shapes.to(sampling_locations.dtype)
    heights = hw[:, 0].view(num_levels, 1)
    widths = hw[:, 1].view(num_levels, 1)
    # cell coordinates, computed as grid_sample does from its [-1, 1] grid
    grid = 2 * sampling_locations - 1
    x = ((grid[..., 0] + 1) * widths - 1) / 2
    y = ((grid[..., 1] + 1) * heights - 1) / 2
    x0 = x.floor()
    y0 = y.floor()
    # bilinear weight of each neighbour; zero outside the map
    wx0 = (x0 + 1 - x) * ((x0 >= 0) & (x0 <= widths - 1))
    wx1 = (x - x0) * ((x0 >= -1) & (x0 <= widths - 2))
    wy0 = (y0 + 1 - y) * ((y0 >= 0) & (y0 <= heights - 1))
    wy1 = (y - y0) * ((y0 >= -1) & (y0 <= heights - 2))
    wy0 = wy0 * attention_weights
    wy1 = wy1 * attention_weights
    weights = torch.stack((wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1), -1)
    # row of each neighbour in the (bs * num_heads * num_value, head_dims)
    # table; a neighbour outside the map is clamped inside (weight 0)
    shapes = spatial_shapes.view(num_levels, 2, 1)
    max_x, max_y = shapes[:, 1] - 1, shapes[:, 0] - 1
    x0 = x0.long()
    y0 = y0.long()
    xi0 = x0.clamp(min=0).minimum(max_x)
    xi1 = (x0 + 1).clamp(min=0).minimum(max_x)
    yi0 = y0.clamp(min=0).minimum(max_y) * shapes[:, 1]
    yi1 = (y0 + 1).clamp(min=0).minimum(max_y) * shapes[:, 1]
    areas = spatial_shapes.prod(1)
    level_starts = torch.cat((areas.new_zeros(1), areas.cumsum(0)[:-1]))
    heads = torch.arange(bs * num_heads, device=device)
    base = (heads * num_value).view(bs, 1, num_heads, 1, 1) + \
        level_starts.view(num_levels, 1)
    yi0 = yi0 + base
    yi1 = yi1 + base
    index = torch.stack((yi0 + xi0, yi0 + xi1, yi1 + xi0, yi1 + xi1), -1)
    table = value.permute(0, 2, 1, 3).reshape(-1, head_dims)
    num_cells = num_levels * num_points * 4
    output = F.embedding_bag(
        index.view(-1, num_cells),
        table,
        per_sample_weights=weights.view(-1, num_cells).to(table.dtype),
        mode='sum')
    return output.view(bs, num_queries, num_heads * head_dims)


@MODELS.register_module()
class MSDeformAttn(MultiScaleDeformableAttention):
    """mmcv's :class:`~mmcv.ops.MultiScaleDeformableAttention` with a
    faster CPU path for inference.

    Same parameters, state-dict keys and arguments as the mmcv module.
    Whenever gradients are needed, and on any device but the CPU, mmcv's
    own forward runs (its CUDA kernel, or its PyTorch path). On CPU without
    gradients the core is :func:`multi_scale_deformable_attn_gather` (the
    same values up to float rounding; measured 2-3x faster for the
    interaction encoder's 5 x 5,100 tokens).
    """

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
        if reference_points.shape[-1] == 2:
            normalizer = torch.stack(
                [spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            sampling_locations = reference_points[:, :, None, :, None, :] \
                + sampling_offsets / normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            sampling_locations = reference_points[:, :, None, :, None, :2] \
                + sampling_offsets / self.num_points \
                * reference_points[:, :, None, :, None, 2:] * 0.5
        else:
            raise ValueError('the last dimension of reference_points must '
                             f'be 2 or 4, got {reference_points.shape[-1]}')
        output = multi_scale_deformable_attn_gather(value, spatial_shapes,
                                                    sampling_locations,
                                                    attention_weights)
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
