# Copyright (c) OpenMMLab. All rights reserved.
import math

import torch
from mmengine.model import BaseModule
from torch import Tensor

from dmformer.registry import MODELS


@MODELS.register_module()
class SinePositionalEncoding1D(BaseModule):
    """Sine positional encoding of a padded token sequence.

    Same maths as ReferFormer's ``PositionEmbeddingSine1D`` used by DMFormer
    for the words and the subject span, but driven by a bool padding mask
    (True = padding; the official code passed the HF 1/0 attention mask).
    Positions are the cumulative count of valid tokens, optionally
    normalised by the count of the last position (the number of valid
    tokens for right padding) and multiplied by ``scale``, so the encoding
    of valid tokens does not depend on how much padding follows them.

    Args:
        num_feats (int): Number of output features. Must be even.
            Defaults to 256.
        temperature (int): Temperature of the frequencies. Defaults to
            10000.
        normalize (bool): Whether to normalise positions to ``[0, scale]``.
            Defaults to True.
        scale (float): Scale of the normalised positions. Defaults to 2*pi.
        eps (float): Added to the denominator of the normalisation.
            Defaults to 1e-6.
    """

    def __init__(self,
                 num_feats: int = 256,
                 temperature: int = 10000,
                 normalize: bool = True,
                 scale: float = 2 * math.pi,
                 eps: float = 1e-6) -> None:
        super().__init__()
        if num_feats % 2 != 0:
            raise ValueError(f'num_feats must be even, got {num_feats}')
        self.num_feats = num_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.eps = eps

    def forward(self, pad_mask: Tensor) -> Tensor:
        """Compute the encoding.

        Args:
            pad_mask (Tensor): Bool (B, N) padding mask, True = padding.

        Returns:
            Tensor: (B, N, num_feats) float32 encoding; features alternate
            sin (even) / cos (odd) of the same frequency.
        """
        if pad_mask.dtype != torch.bool or pad_mask.dim() != 2:
            raise ValueError('pad_mask must be a 2-D bool tensor, got '
                             f'{pad_mask.dtype} {tuple(pad_mask.shape)}')
        not_mask = ~pad_mask
        x_embed = not_mask.cumsum(1, dtype=torch.float32)
        if self.normalize:
            x_embed = x_embed / (x_embed[:, -1:] + self.eps) * self.scale
        dim_t = torch.arange(
            self.num_feats, dtype=torch.float32, device=pad_mask.device)
        dim_t = self.temperature**(2 * (dim_t // 2) / self.num_feats)
        # [B, N] -> [B, N, num_feats]
        pos = x_embed[:, :, None] / dim_t
        pos = torch.stack((pos[:, :, 0::2].sin(), pos[:, :, 1::2].cos()),
                          dim=3).flatten(2)
        return pos

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_feats={self.num_feats}, '
                f'temperature={self.temperature}, '
                f'normalize={self.normalize}, scale={self.scale}, '
                f'eps={self.eps})')
