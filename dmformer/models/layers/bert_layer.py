# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor

from dmformer.registry import MODELS
from dmformer.utils import OptMultiConfig


@MODELS.register_module()
class BertStyleEncoderLayer(BaseModule):
    """One post-LN BERT encoder layer on arbitrary-width features.

    The ``BertEncoderLayer`` of DMFormer/GLIP (the text layer of the
    interaction branches and of the subject perceptron): self attention ->
    dropout -> add -> LayerNorm -> Linear -> GELU -> Linear -> dropout ->
    add -> LayerNorm. It is assembled from the Hugging Face
    ``BertAttention``, ``BertIntermediate`` and ``BertOutput`` modules built
    from a :class:`transformers.BertConfig`, so its parameter names
    (``attention.self.query`` ... ``output.LayerNorm``) are those of the
    official checkpoints.

    Design decisions:

    - The attention implementation is forced to ``'eager'``: the layer adds
      the usual BERT extended mask ``(pad) * finfo(dtype).min`` to the
      attention scores (AMP-safe, no +/-50000 clamps needed), independently
      of the transformers default (SDPA in recent versions).
    - Initialisation: the official layers keep the PyTorch default init
      because HF ``post_init`` is never called. By default this layer
      applies BERT's initialisation (``Normal(std=0.02)`` on linear weights,
      zero biases, LayerNorm 1/0) when ``init_weights`` is called; pass
      ``init_cfg=None`` to keep the PyTorch defaults of the official code.

    Args:
        embed_dims (int): Hidden size. Defaults to 256.
        num_heads (int): Number of attention heads. Defaults to 8.
        feedforward_channels (int): Intermediate FFN size. Defaults to 3072.
        dropout (float): Dropout on the attention output and FFN output.
            Defaults to 0.1.
        attn_drop (float, optional): Dropout on the attention probabilities.
            Defaults to ``dropout``.
        act (str): Activation name from ``transformers.activations.ACT2FN``.
            Defaults to ``'gelu'``.
        layer_norm_eps (float): LayerNorm epsilon. Defaults to 1e-12.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to BERT's ``Normal(std=0.02, bias=0)`` on linears.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 feedforward_channels: int = 3072,
                 dropout: float = 0.1,
                 attn_drop: Optional[float] = None,
                 act: str = 'gelu',
                 layer_norm_eps: float = 1e-12,
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', layer='Linear', std=0.02,
                     bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_heads ({num_heads})')
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import (BertAttention,
                                                            BertIntermediate,
                                                            BertOutput)
        config = BertConfig(
            hidden_size=embed_dims,
            num_attention_heads=num_heads,
            intermediate_size=feedforward_channels,
            hidden_act=act,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=(dropout if attn_drop is None else
                                          attn_drop),
            layer_norm_eps=layer_norm_eps,
            attn_implementation='eager')
        self.embed_dims = embed_dims
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: Tensor, pad_mask: Optional[Tensor] = None) -> Tensor:
        """Apply the layer.

        Args:
            x (Tensor): Tokens (B, N, C).
            pad_mask (Tensor, optional): Bool (B, N), True = padding. Padded
                keys are excluded from attention; padded queries are still
                computed (and should be ignored downstream).

        Returns:
            Tensor: (B, N, C).
        """
        extended_mask = None
        if pad_mask is not None:
            if pad_mask.dtype != torch.bool or pad_mask.shape != x.shape[:2]:
                raise ValueError(
                    'pad_mask must be a bool tensor of shape '
                    f'{tuple(x.shape[:2])}, got {pad_mask.dtype} '
                    f'{tuple(pad_mask.shape)}')
            # [B, N] -> [B, 1, 1, N] additive mask (BERT extended mask)
            extended_mask = pad_mask[:, None, None, :].to(x.dtype) * \
                torch.finfo(x.dtype).min
        attn_out = self.attention(x, attention_mask=extended_mask)[0]
        return self.output(self.intermediate(attn_out), attn_out)
