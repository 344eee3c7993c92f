# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmengine.model import BaseModule, ModuleList, caffe2_xavier_init
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.utils import ConfigType, OptMultiConfig


@MODELS.register_module()
class VisionLanguageBlock(BaseModule):
    """Spatio-temporal self-attention + cross-attention to the words.

    The ``VisionLanguageBlock`` of `ReferFormer
    <https://arxiv.org/abs/2201.00487>`_ (``models/segmentation.py``), used
    unchanged by DMFormer's pixel decoder. Post-norm:

    1. self-attention over all ``T * h * w`` tokens of a video, query and key
       ``x + pos``, value ``x``; when ``sr_ratio > 1`` query, key, value and
       the key padding mask are nearest-downsampled to
       ``(int(h / sr_ratio), int(w / sr_ratio))`` and the output is
       bilinearly upsampled back (``align_corners=False``); add & LN;
    2. cross-attention with query ``x + pos``, key ``words + text_pos``,
       value ``words`` and the word padding mask (mmcv
       :class:`MultiheadAttention`, which adds the residual); LN;
    3. FFN (mmcv :class:`FFN`, ReLU, with residual); LN.

    All padding masks are bool with True = padding (the official code passed
    the HF 1/0 attention mask, 1 = valid).

    Everything after the self-attention is computed token by token. At
    inference (eval mode, no gradient) that part runs over chunks of
    ``chunk_size`` tokens: at the stride-4 level of a 5 x 384 x 640 clip
    (77k tokens), its intermediate tensors are otherwise a dozen fresh
    79 MB blocks (630 MB for the FFN's hidden layer) that the CPU
    allocator maps and the caches cannot hold (the chunk sizes measured
    are in docs/en/advanced_guides/speed_memory.md). The results are the
    same up to float rounding.

    Args:
        embed_dims (int): Feature dimension. Defaults to 256.
        num_heads (int): Attention heads. Defaults to 8.
        feedforward_channels (int): FFN hidden dimension. Defaults to 2048.
        dropout (float): Dropout of attention probabilities, residual
            branches and FFN. Defaults to 0.1.
        sr_ratio (int): Spatial reduction ratio of the self-attention.
            Defaults to 1.
        chunk_size (int): Tokens per chunk of the token-wise part at
            inference. Defaults to 4096.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.1,
                 sr_ratio: int = 1,
                 chunk_size: int = 4096,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if chunk_size < 1:
            raise ValueError('VisionLanguageBlock: chunk_size must be '
                             f'positive, got {chunk_size}')
        self.embed_dims = embed_dims
        self.sr_ratio = sr_ratio
        self.chunk_size = chunk_size
        # plain torch MHA: its residual is at full resolution while the
        # attention itself may run on the downsampled tokens
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.self_attn_drop = nn.Dropout(dropout)
        self.cross_attn = MultiheadAttention(
            embed_dims=embed_dims,
            num_heads=num_heads,
            attn_drop=dropout,
            proj_drop=0.,
            dropout_layer=dict(type='Dropout', drop_prob=dropout),
            batch_first=True)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            num_fcs=2,
            ffn_drop=dropout,
            act_cfg=dict(type='ReLU', inplace=True))
        self.norms = ModuleList(
            [build_norm_layer(dict(type='LN'), embed_dims)[1]
             for _ in range(3)])

    def init_weights(self) -> None:
        """Xavier-uniform init of every >1-D parameter (official)."""
        super().init_weights()
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _resize_tokens(self, x: Tensor, num_frames: int,
                       src_shape: Tuple[int, int],
                       dst_shape: Tuple[int, int], mode: str) -> Tensor:
        """Resize (B, T*h*w, C) video tokens frame by frame."""
        b, _, c = x.shape
        h, w = src_shape
        # (B, T*h*w, C) -> (B*T, C, h, w)
        x = x.reshape(b * num_frames, h, w, c).permute(0, 3, 1, 2)
        if mode == 'bilinear':
            x = F.interpolate(
                x, size=dst_shape, mode=mode, align_corners=False)
        else:
            x = F.interpolate(x, size=dst_shape, mode=mode)
        # (B*T, C, h', w') -> (B, T*h'*w', C)
        return x.permute(0, 2, 3, 1).reshape(b, -1, c)

    def forward(self, query: Tensor, query_pos: Tensor,
                query_pad_mask: Tensor, num_frames: int,
                spatial_shape: Tuple[int, int], text_feats: Tensor,
                text_pos: Tensor, text_pad_mask: Tensor) -> Tensor:
        """Forward function.

        Args:
            query (Tensor): Visual tokens of every video, has shape
                (B, T * h * w, C) in (t, h, w) order.
            query_pos (Tensor): Their positional encoding, same shape.
            query_pad_mask (Tensor): Bool, True = padding, has shape
                (B, T * h * w).
            num_frames (int): Number of frames T.
            spatial_shape (tuple[int, int]): (h, w) of the level.
            text_feats (Tensor): Word features, has shape (B, L, C).
            text_pos (Tensor): Word positional encoding, (B, L, C).
            text_pad_mask (Tensor): Bool, True = padding, (B, L).

        Returns:
            Tensor: Updated visual tokens, has shape (B, T * h * w, C).
        """
        h, w = spatial_shape
        b = query.size(0)
        q = k = query + query_pos
        v = query
        key_pad_mask = query_pad_mask
        if self.sr_ratio > 1:
            # NOTE: max(1, .) only guards maps smaller than sr_ratio, where
            # the official code would fail; otherwise it is int(h / sr).
            new_shape = (max(1, int(h / self.sr_ratio)),
                         max(1, int(w / self.sr_ratio)))
            q = self._resize_tokens(q, num_frames, (h, w), new_shape,
                                    'nearest')
            k = q
            v = self._resize_tokens(v, num_frames, (h, w), new_shape,
                                    'nearest')
            # (B, T*h*w) -> (B*T, 1, h, w) -> (B, T*h'*w')
            mask = query_pad_mask.view(b * num_frames, 1, h, w).float()
            mask = F.interpolate(mask, size=new_shape, mode='nearest')
            key_pad_mask = mask.bool().view(b, -1)
        out = self.self_attn(q, k, v, key_padding_mask=key_pad_mask)[0]
        if self.sr_ratio > 1:
            out = self._resize_tokens(out, num_frames, new_shape, (h, w),
                                      'bilinear')
        text = (text_feats, text_pos, text_pad_mask)
        num_tokens = query.size(1)
        step = max(1, self.chunk_size // b)
        if self.training or torch.is_grad_enabled() or num_tokens <= step:
            return self._update_tokens(query, out, query_pos, *text)
        result = torch.empty_like(query)
        for start in range(0, num_tokens, step):
            chunk = slice(start, start + step)
            result[:, chunk] = self._update_tokens(query[:, chunk],
                                                   out[:, chunk],
                                                   query_pos[:, chunk], *text)
        return result

    def _update_tokens(self, query: Tensor, attn_out: Tensor,
                       query_pos: Tensor, text_feats: Tensor,
                       text_pos: Tensor, text_pad_mask: Tensor) -> Tensor:
        """The token-wise part: residual of the self-attention and LN,
        cross-attention to the words and LN, FFN and LN.

        Args:
            query (Tensor): Visual tokens, has shape (B, n, C).
            attn_out (Tensor): Their self-attention output, (B, n, C).
            query_pos (Tensor): Their positional encoding, (B, n, C).
            text_feats, text_pos, text_pad_mask: As in :meth:`forward`.

        Returns:
            Tensor: Updated tokens, has shape (B, n, C).
        """
        query = self.norms[0](query + self.self_attn_drop(attn_out))
        if self.training or torch.is_grad_enabled():
            query = self.cross_attn(
                query=query,
                key=text_feats,
                value=text_feats,
                query_pos=query_pos,
                key_pos=text_pos,
                key_padding_mask=text_pad_mask)
        else:
            # what mmcv's wrapper computes, without the head-averaged
            # attention weights it asks for and drops (their softmax over
            # the few words costs more than the attention itself)
            cross = self.cross_attn
            out = cross.attn(
                query=(query + query_pos).transpose(0, 1),
                key=(text_feats + text_pos).transpose(0, 1),
                value=text_feats.transpose(0, 1),
                key_padding_mask=text_pad_mask,
                need_weights=False)[0].transpose(0, 1)
            query = query + cross.dropout_layer(cross.proj_drop(out))
        query = self.norms[1](query)
        return self.norms[2](self.ffn(query))


@MODELS.register_module()
class CrossModalFPNDecoder(BaseModule):
    """Cross-modal FPN pixel decoder of ReferFormer / DMFormer.

    Implementation of the ``CrossModalFPNDecoder`` of `ReferFormer
    <https://arxiv.org/abs/2201.00487>`_, used unchanged by DMFormer. Code is
    modified from the `official github repo
    <https://github.com/wjn922/ReferFormer>`_ (``models/segmentation.py``).

    Top-down over the levels (coarse to fine): for every level,
    ``lateral = Conv1x1 + GN`` (no bias with a norm), then a
    :class:`VisionLanguageBlock` over all frames of a video, then (except for
    the coarsest level) ``+ nearest-upsample(previous output)``, then
    ``Conv3x3 + GN + ReLU``. Finally ``mask_features = Conv3x3`` (with bias,
    no norm) on the finest level. Levels, fine to coarse, are the stride-4
    backbone map and the transformer memory maps of strides 8, 16 and 32.

    Args:
        in_channels (Sequence[int]): Input channels, fine to coarse.
            Defaults to (96, 256, 256, 256) (Swin-T stride 4 + memory).
        conv_dim (int): FPN channels. Defaults to 256.
        mask_dim (int): Output channels. Defaults to 256.
        num_heads (int): Attention heads of the blocks. Defaults to 8.
        feedforward_channels (int): FFN hidden dims. Defaults to 2048.
        dropout (float): Dropout of the blocks. Defaults to 0.1.
        sr_ratios (Sequence[int]): Self-attention spatial reduction ratio per
            level, fine to coarse. Defaults to (8, 4, 2, 1).
        norm_cfg (dict): Norm of the lateral and output convs. Defaults to
            ``dict(type='GN', num_groups=8)``.
        chunk_size (int): Tokens per chunk of the blocks' token-wise part
            at inference (see :class:`VisionLanguageBlock`). Defaults to
            4096.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (96, 256, 256, 256),
                 conv_dim: int = 256,
                 mask_dim: int = 256,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.1,
                 sr_ratios: Sequence[int] = (8, 4, 2, 1),
                 norm_cfg: ConfigType = dict(type='GN', num_groups=8),
                 chunk_size: int = 4096,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(sr_ratios) != len(in_channels):
            raise ValueError('CrossModalFPNDecoder: sr_ratios and '
                             'in_channels must have the same length, got '
                             f'{len(sr_ratios)} and {len(in_channels)}')
        self.in_channels = list(in_channels)
        self.num_levels = len(in_channels)
        self.conv_dim = conv_dim
        self.mask_dim = mask_dim
        # index 0 = finest level (stride 4) like the official code
        self.lateral_convs = ModuleList()
        self.output_convs = ModuleList()
        self.vl_blocks = ModuleList()
        for in_ch, sr_ratio in zip(in_channels, sr_ratios):
            self.lateral_convs.append(
                ConvModule(
                    in_ch, conv_dim, 1, norm_cfg=norm_cfg, act_cfg=None))
            self.output_convs.append(
                ConvModule(
                    conv_dim,
                    conv_dim,
                    3,
                    padding=1,
                    norm_cfg=norm_cfg,
                    act_cfg=dict(type='ReLU')))
            self.vl_blocks.append(
                VisionLanguageBlock(
                    embed_dims=conv_dim,
                    num_heads=num_heads,
                    feedforward_channels=feedforward_channels,
                    dropout=dropout,
                    sr_ratio=sr_ratio,
                    chunk_size=chunk_size))
        self.mask_features = nn.Conv2d(
            conv_dim, mask_dim, kernel_size=3, stride=1, padding=1)

    def init_weights(self) -> None:
        """Blocks: xavier; convs: Caffe2 xavier fill (official)."""
        super().init_weights()
        convs = [m.conv for m in self.lateral_convs] + \
            [m.conv for m in self.output_convs] + [self.mask_features]
        for conv in convs:
            # the same as detectron2's c2_xavier_fill
            caffe2_xavier_init(conv, bias=0)

    def forward(self, mlvl_feats: List[Tensor], mlvl_pad_masks: List[Tensor],
                mlvl_pos: List[Tensor], word_feats: Tensor,
                word_pad_mask: Tensor, text_pos: Tensor,
                num_frames: int) -> Tensor:
        """Forward function.

        Args:
            mlvl_feats (list[Tensor]): Features fine to coarse, level ``l``
                has shape (B*T, in_channels[l], h_l, w_l) in video-major
                (b t) order: the stride-4 backbone map then the memory maps
                of strides 8, 16, 32.
            mlvl_pad_masks (list[Tensor]): Bool padding masks (True = pad),
                each of shape (B*T, h_l, w_l).
            mlvl_pos (list[Tensor]): Positional encodings, each of shape
                (B*T, conv_dim, h_l, w_l).
            word_feats (Tensor): Word features, has shape (B, L, conv_dim).
            word_pad_mask (Tensor): Bool, True = padding, shape (B, L).
            text_pos (Tensor): Word positional encoding, (B, L, conv_dim).
            num_frames (int): Frames per video T.

        Returns:
            Tensor: Mask features, has shape (B*T, mask_dim, h_0, w_0).
        """
        if not (len(mlvl_feats) == len(mlvl_pad_masks) == len(mlvl_pos) ==
                self.num_levels):
            raise ValueError(
                f'CrossModalFPNDecoder: expected {self.num_levels} levels of '
                f'feats/pad_masks/pos, got {len(mlvl_feats)}/'
                f'{len(mlvl_pad_masks)}/{len(mlvl_pos)}')
        bt = mlvl_feats[0].size(0)
        if bt % num_frames != 0:
            raise ValueError(f'CrossModalFPNDecoder: batch*frames {bt} is '
                             f'not divisible by num_frames {num_frames}')
        b = bt // num_frames
        # at inference the lateral convs take channels-last inputs, the
        # layout of the tokens: their outputs are then in token order and
        # no transposing copy is needed. Training keeps the input layouts
        # (and so the float rounding) its results were obtained with.
        lateral_cl = not (self.training or torch.is_grad_enabled())
        y = None
        for lvl in range(self.num_levels - 1, -1, -1):
            feat = mlvl_feats[lvl]
            h, w = feat.shape[-2:]
            if lateral_cl:
                feat = feat.contiguous(memory_format=torch.channels_last)
            x = self.lateral_convs[lvl](feat)
            c = x.size(1)
            # (B*T, C, h, w) -> (B, T*h*w, C)
            x = x.permute(0, 2, 3, 1).reshape(b, num_frames * h * w, c)
            pos = mlvl_pos[lvl].view(b, num_frames, c, h * w)
            pos = pos.permute(0, 1, 3, 2).reshape(b, num_frames * h * w, c)
            # (B*T, h, w) -> (B, T*h*w)
            mask = mlvl_pad_masks[lvl].reshape(b, num_frames * h * w)
            x = self.vl_blocks[lvl](
                x,
                query_pos=pos,
                query_pad_mask=mask,
                num_frames=num_frames,
                spatial_shape=(h, w),
                text_feats=word_feats,
                text_pos=text_pos,
                text_pad_mask=word_pad_mask)
            # (B, T*h*w, C) -> (B*T, C, h, w), a channels-last view
            x = x.view(bt, h, w, c).permute(0, 3, 1, 2)
            if y is not None:
                x = x + F.interpolate(y, size=(h, w), mode='nearest')
            y = self.output_convs[lvl](x)
        return self.mask_features(y)
