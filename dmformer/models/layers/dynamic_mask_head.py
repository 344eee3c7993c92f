# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import MLP
from mmengine.model import BaseModule
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.utils import OptMultiConfig


@MODELS.register_module()
class DynamicMaskHead(BaseModule):
    """Dynamic (conditional) mask head of ReferFormer / DMFormer.

    Implementation of the dynamic mask head of `ReferFormer
    <https://arxiv.org/abs/2201.00487>`_ used unchanged by DMFormer. Code is
    modified from the `official github repo
    <https://github.com/wjn922/ReferFormer>`_ (``dynamic_mask_with_coords``,
    ``parse_dynamic_params``, ``mask_heads_forward``).

    A controller MLP maps every decoder query (one per frame and query slot)
    to the weights and biases of a tiny per-instance fully convolutional
    network of ``controller_layers`` 1x1 convolutions, which is applied to the
    stride-``mask_feat_stride`` mask features of the query's frame
    concatenated with two relative-coordinate channels. With the default
    settings (256 mask channels, 8 dynamic channels, 3 layers) the network is
    ``258 -> 8 -> ReLU -> 8 -> ReLU -> 1`` and needs
    ``(256 + 2) * 8 + 8 * 8 + 8 * 1 + 8 + 8 + 1 = 2153`` parameters per
    instance, laid out as all weights first (each reshaped to
    ``(out, in)``), then all biases.

    The relative coordinates are, as in the official code, *unnormalised
    pixel offsets* ``(ref_cx * img_w - (x * s + s // 2),
    ref_cy * img_h - (y * s + s // 2))`` in ``(x, y)`` order, where
    ``(img_h, img_w)`` is the unpadded input size and ``s`` the mask feature
    stride (kept as is for fidelity).

    NOTE: the first dynamic layer is evaluated as an ``einsum`` that applies
    the per-instance weights to the frame's mask features directly. This is
    exactly the grouped 1x1 convolution of the official code (``groups`` =
    number of instances, checked against ``F.conv2d`` in the unit tests) but
    avoids materialising the ``Q``-fold repeated ``(C + 2)``-channel input,
    which at 384x640 with 2 videos x 5 frames x 5 queries is ~0.8 GB. The
    following layers use grouped ``F.conv2d`` as in the official code.

    Args:
        in_channels (int): Channels of the mask features (``mask_dim``).
            Defaults to 256.
        query_channels (int): Channels of the decoder queries fed to the
            controller. Defaults to 256.
        controller_layers (int): Number of dynamic 1x1 conv layers (the name
            of the official option). Must be >= 2. Defaults to 3.
        dynamic_mask_channels (int): Hidden channels of the dynamic convs.
            Defaults to 8.
        mask_feat_stride (int): Stride of the mask features w.r.t. the input
            image. Defaults to 4.
        rel_coord (bool): Whether to append relative coordinates. Defaults to
            True.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 256,
                 query_channels: int = 256,
                 controller_layers: int = 3,
                 dynamic_mask_channels: int = 8,
                 mask_feat_stride: int = 4,
                 rel_coord: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if controller_layers < 2:
            raise ValueError('DynamicMaskHead: controller_layers (number of '
                             'dynamic conv layers) must be >= 2, got '
                             f'{controller_layers}')
        self.in_channels = in_channels
        self.query_channels = query_channels
        self.controller_layers = controller_layers
        self.dynamic_mask_channels = dynamic_mask_channels
        self.mask_feat_stride = mask_feat_stride
        self.rel_coord = rel_coord

        ch = dynamic_mask_channels
        first_in = in_channels + 2 if rel_coord else in_channels
        weight_nums = [first_in * ch]
        bias_nums = [ch]
        for _ in range(controller_layers - 2):
            weight_nums.append(ch * ch)
            bias_nums.append(ch)
        weight_nums.append(ch * 1)
        bias_nums.append(1)
        self.weight_nums: List[int] = weight_nums
        self.bias_nums: List[int] = bias_nums
        self.num_gen_params = sum(weight_nums) + sum(bias_nums)
        # the controller is always a 3-layer MLP (official code)
        self.controller = MLP(query_channels, query_channels,
                              self.num_gen_params, 3)

    def init_weights(self) -> None:
        """Xavier-uniform controller weights and zero biases (official)."""
        super().init_weights()
        for layer in self.controller.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def parse_dynamic_params(self,
                             params: Tensor) -> Tuple[List[Tensor], ...]:
        """Split the generated parameters into per-layer weights and biases.

        Args:
            params (Tensor): Generated parameters, has shape
                (..., num_gen_params).

        Returns:
            tuple[list[Tensor], list[Tensor]]: ``weights[l]`` has shape
            (..., out_l, in_l) and ``biases[l]`` has shape (..., out_l).
        """
        if params.size(-1) != self.num_gen_params:
            raise ValueError('DynamicMaskHead: expected '
                             f'{self.num_gen_params} dynamic params, got '
                             f'{params.size(-1)}')
        splits = torch.split(params, self.weight_nums + self.bias_nums, -1)
        num_layers = len(self.weight_nums)
        weights, biases = [], []
        for i in range(num_layers):
            out_ch = self.bias_nums[i]
            # (..., out * in) -> (..., out, in), row-major like the official
            # reshape(num_insts * out, in, 1, 1)
            weights.append(splits[i].unflatten(-1, (out_ch, -1)))
            biases.append(splits[num_layers + i])
        return weights, biases

    def get_locations(self, h: int, w: int,
                      device: torch.device) -> Tensor:
        """Pixel coordinates of the mask feature cell centres.

        Args:
            h (int): Height of the mask features.
            w (int): Width of the mask features.
            device (torch.device): Device of the output.

        Returns:
            Tensor: Has shape (h * w, 2), last dimension is (x, y) in input
            pixels, i.e. ``(x * stride + stride // 2, y * stride +
            stride // 2)``.
        """
        s = self.mask_feat_stride
        shifts_x = torch.arange(
            0, w * s, step=s, dtype=torch.float32, device=device)
        shifts_y = torch.arange(
            0, h * s, step=s, dtype=torch.float32, device=device)
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing='ij')
        locations = torch.stack(
            (shift_x.reshape(-1), shift_y.reshape(-1)), dim=1) + s // 2
        return locations

    def forward(self, query_feats: Tensor, mask_feats: Tensor,
                ref_points: Tensor,
                img_shapes: Union[Tensor, Sequence[Sequence[int]]]) -> Tensor:
        """Generate the dynamic parameters and predict the mask logits.

        Args:
            query_feats (Tensor): Decoder query features, has shape
                (B, T, Q, query_channels).
            mask_feats (Tensor): Mask features of every frame, has shape
                (B, T, in_channels, H, W) at stride ``mask_feat_stride``.
            ref_points (Tensor): Normalised ``(cx, cy)`` reference points of
                the queries (the refined box centres of the decoder layer),
                has shape (B, T, Q, 2).
            img_shapes (Tensor or list[tuple[int, int]]): Unpadded input
                size ``(h, w)`` of every video, shape (B, 2).

        Returns:
            Tensor: Mask logits at stride ``mask_feat_stride`` of the padded
            input, has shape (B, T, Q, H, W).
        """
        params = self.controller(query_feats)
        return self.dynamic_mask_forward(mask_feats, params, ref_points,
                                         img_shapes)

    def dynamic_mask_forward(
            self, mask_feats: Tensor, params: Tensor, ref_points: Tensor,
            img_shapes: Union[Tensor, Sequence[Sequence[int]]]) -> Tensor:
        """Apply the per-instance dynamic convolutions.

        Args:
            mask_feats (Tensor): Has shape (B, T, C, H, W).
            params (Tensor): Dynamic parameters, has shape
                (B, T, Q, num_gen_params).
            ref_points (Tensor): Normalised (cx, cy), shape (B, T, Q, 2).
            img_shapes (Tensor or list[tuple[int, int]]): (h, w) per video,
                shape (B, 2).

        Returns:
            Tensor: Mask logits, has shape (B, T, Q, H, W).
        """
        if mask_feats.dim() != 5 or params.dim() != 4:
            raise ValueError('DynamicMaskHead: mask_feats must be (B, T, C, '
                             'H, W) and params (B, T, Q, P), got '
                             f'{tuple(mask_feats.shape)} and '
                             f'{tuple(params.shape)}')
        b, t, c, h, w = mask_feats.shape
        q = params.size(2)
        if c != self.in_channels:
            raise ValueError(f'DynamicMaskHead: expected {self.in_channels} '
                             f'mask feature channels, got {c}')
        weights, biases = self.parse_dynamic_params(params)

        # first dynamic layer, split into its feature and coordinate parts
        w_feat = weights[0][..., :c]
        # (B, T, Q, ch, C) x (B, T, C, H*W) -> (B, T, Q, ch, H*W)
        x = torch.einsum('btqoc,btcn->btqon', w_feat, mask_feats.flatten(3))
        if self.rel_coord:
            img_shapes = torch.as_tensor(
                img_shapes, dtype=mask_feats.dtype, device=mask_feats.device)
            # (h, w) -> (w, h) to scale normalised (cx, cy): (B, 1, 1, 1, 2)
            scale = img_shapes.flip(-1).view(b, 1, 1, 1, 2)
            locations = self.get_locations(h, w, mask_feats.device)
            # (B, T, Q, 1, 2) - (1, 1, 1, H*W, 2) -> (B, T, Q, H*W, 2)
            rel_coords = ref_points.unsqueeze(3) * scale - locations.view(
                1, 1, 1, h * w, 2).to(mask_feats.dtype)
            w_coord = weights[0][..., c:]
            # (B, T, Q, ch, 2) x (B, T, Q, H*W, 2) -> (B, T, Q, ch, H*W)
            x = x + torch.einsum('btqok,btqnk->btqon', w_coord, rel_coords)
        x = x + biases[0].unsqueeze(-1)

        # remaining layers as grouped 1x1 convs, one group per instance
        num_insts = b * t * q
        # (B, T, Q, ch, H*W) -> (1, N*ch, H, W)
        x = x.reshape(1, -1, h, w)
        for i in range(1, len(weights)):
            x = F.relu(x)
            # (B, T, Q, out, in) -> (N*out, in, 1, 1)
            weight = weights[i].reshape(-1, weights[i].size(-1), 1, 1)
            x = F.conv2d(
                x, weight, bias=biases[i].reshape(-1), groups=num_insts)
        # (1, N, H, W) -> (B, T, Q, H, W)
        return x.view(b, t, q, h, w)
