# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.utils import OptMultiConfig


@MODELS.register_module()
class VisionLanguageFusion(BaseModule):
    """Multiplicative vision <- language cross-attention.

    ReferFormer's ``VisionLanguageFusionModule`` (used by every DMFormer
    interaction branch): one :class:`torch.nn.MultiheadAttention`
    with query = visual tokens (no visual position), key = text + text
    position, value = text, and output ``x * attn(x)`` (element-wise
    product, no residual, no norm). The text padding mask is a bool key
    padding mask (True = padding; the official code passed the HF 1/0
    attention mask instead).

    Args:
        embed_dims (int): Feature size of both modalities. Defaults to 256.
        num_heads (int): Number of attention heads. Defaults to 8.
        dropout (float): Attention dropout. Defaults to 0.0.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 dropout: float = 0.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.multihead_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)

    def forward(self,
                x: Tensor,
                text: Tensor,
                text_pad_mask: Optional[Tensor] = None,
                text_pos: Optional[Tensor] = None) -> Tensor:
        """Fuse text into visual tokens.

        Args:
            x (Tensor): Visual tokens (B, N, C).
            text (Tensor): Text tokens (B, L, C).
            text_pad_mask (Tensor, optional): Bool (B, L), True = padding.
            text_pos (Tensor, optional): Text positions (B, L, C).

        Returns:
            Tensor: (B, N, C), ``x * attn(x, text)``.
        """
        if text_pad_mask is not None and text_pad_mask.dtype != torch.bool:
            raise ValueError('text_pad_mask must be a bool tensor '
                             f'(True = padding), got {text_pad_mask.dtype}')
        key = text if text_pos is None else text + text_pos
        attn = self.multihead_attn(
            query=x,
            key=key,
            value=text,
            key_padding_mask=text_pad_mask,
            need_weights=False)[0]
        return x * attn
