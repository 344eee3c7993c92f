# Copyright (c) OpenMMLab. All rights reserved.
"""An FFN that runs inference over the tokens in chunks."""
from typing import Optional

import torch
from mmcv.cnn.bricks.transformer import FFN
from torch import Tensor

from dmformer.registry import MODELS


@MODELS.register_module()
class ChunkedFFN(FFN):
    """mmcv's :class:`~mmcv.cnn.bricks.transformer.FFN`, run over the
    tokens in chunks at inference.

    Same arguments (plus ``chunk_size``), parameters and state-dict keys as
    the mmcv module, and the same function: every token is computed on its
    own, so cutting the tokens into chunks changes nothing but the order
    of the work. In training, or whenever a gradient is needed, mmcv's
    forward runs unchanged.

    Why: the hidden layer of an FFN is ``feedforward_channels / embed_dims``
    (here 8) times its input. Over the 77k stride-4 tokens of a 5 x 384 x
    640 clip that is a 630 MB tensor. On CPU such a block is too large for
    the allocator to keep, so every call maps fresh memory and pays a page
    fault for each page of it, and the two matrix products stream it
    through memory. Chunks of ``chunk_size`` tokens keep the hidden layer
    small enough to be reused from the heap and to stay in cache.

    Args:
        chunk_size (int): Tokens per chunk at inference. Inputs with at
            most this many tokens run in one piece. Defaults to 1024.
        **kwargs: The arguments of mmcv's ``FFN``.
    """

    def __init__(self, *args, chunk_size: int = 1024, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if chunk_size < 1:
            raise ValueError(
                f'ChunkedFFN: chunk_size must be positive, got {chunk_size}')
        self.chunk_size = chunk_size

    def _needs_grad(self, *inputs: Optional[Tensor]) -> bool:
        """Whether autograd will track the output."""
        return torch.is_grad_enabled() and (
            any(t is not None and t.requires_grad for t in inputs)
            or any(p.requires_grad for p in self.parameters()))

    def forward(self, x: Tensor, identity: Optional[Tensor] = None) -> Tensor:
        """Forward function.

        Args:
            x (Tensor): Tokens, has shape (..., embed_dims).
            identity (Tensor, optional): Added to the output when
                ``add_identity``; defaults to ``x``. Same shape as ``x``.

        Returns:
            Tensor: Same shape as ``x``.
        """
        num_tokens = x.numel() // max(x.size(-1), 1)
        if self.training or num_tokens <= self.chunk_size or \
                self._needs_grad(x, identity):
            return super().forward(x, identity)
        tokens = x.reshape(num_tokens, x.size(-1))
        if self.add_identity:
            residual = (x if identity is None else identity).reshape(
                num_tokens, -1)
        out = None
        for start in range(0, num_tokens, self.chunk_size):
            chunk = slice(start, start + self.chunk_size)
            y = self.dropout_layer(self.gamma2(self.layers(tokens[chunk])))
            if out is None:
                out = y.new_empty(num_tokens, y.size(-1))
            if self.add_identity:
                # the same sum as mmcv's ``identity + out``
                torch.add(residual[chunk], y, out=out[chunk])
            else:
                out[chunk] = y
        return out.view(*x.shape[:-1], out.size(-1))
