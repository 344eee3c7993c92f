# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.utils import ConfigType, OptMultiConfig
from ..layers.bert_layer import BertStyleEncoderLayer


@MODELS.register_module()
class SubjectPerceptronHead(BaseModule):
    """Subject perceptron: token-level "is subject" classifier.

    One :class:`BertStyleEncoderLayer` on the resized word features followed
    by ``Linear(embed_dims, 2)``. :meth:`select` picks, among the noun
    chunks of each caption, the one whose most confident token has the
    largest subject probability; :meth:`loss` applies ``loss_subject`` (the
    token cross-entropy, :class:`~dmformer.models.losses.SubjectTokenLoss`)
    against the (pseudo) subject labels.

    Args:
        embed_dims (int): Width of the word features. Defaults to 256.
        num_heads (int): Heads of the BERT layer. Defaults to 8.
        feedforward_channels (int): FFN size of the BERT layer. Defaults to
            3072.
        dropout (float): Dropout of the BERT layer. Defaults to 0.1.
        loss_subject (dict): Config of the token loss. Defaults to
            ``SubjectTokenLoss`` with weight 2.0.
        layer_init_cfg (dict, optional): ``init_cfg`` of the BERT layer.
            Defaults to BERT's ``Normal(std=0.02)`` (see
            :class:`BertStyleEncoderLayer`); None keeps PyTorch defaults.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 feedforward_channels: int = 3072,
                 dropout: float = 0.1,
                 loss_subject: ConfigType = dict(
                     type='SubjectTokenLoss', loss_weight=2.0),
                 layer_init_cfg: OptMultiConfig = dict(
                     type='Normal', layer='Linear', std=0.02, bias=0.),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_subject = MODELS.build(loss_subject)
        self.encoder_layer = BertStyleEncoderLayer(
            embed_dims=embed_dims,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels,
            dropout=dropout,
            init_cfg=layer_init_cfg)
        self.fc_cls = nn.Linear(embed_dims, 2)

    def forward(self, word_feats: Tensor, word_pad_mask: Tensor) -> Tensor:
        """Token logits.

        Args:
            word_feats (Tensor): (B, L, C) resized word features.
            word_pad_mask (Tensor): Bool (B, L), True = padding.

        Returns:
            Tensor: (B, L, 2) logits; class 1 = "token is in the subject".
        """
        return self.fc_cls(self.encoder_layer(word_feats, word_pad_mask))

    @torch.no_grad()
    def select(self, logits: Tensor, word_pad_mask: Tensor,
               chunk_spans: Tensor, chunk_valid: Tensor) -> Tensor:
        """Pick the subject noun chunk of every caption (batched).

        ``prob_k`` = max over the tokens of chunk k of
        ``softmax(logits)[..., 1]``; the chosen chunk is the argmax over the
        valid chunks, ties going to the earliest chunk (as the official
        strict ``>`` loop). Hard, non-differentiable choice; no host sync.

        Args:
            logits (Tensor): (B, L, 2) output of :meth:`forward`.
            word_pad_mask (Tensor): Bool (B, L), True = padding.
            chunk_spans (Tensor): Long (B, K, 2) token spans ``[start, end)``.
            chunk_valid (Tensor): Bool (B, K).

        Returns:
            Tensor: Long (B, 2) token span ``[start, end)`` of the chosen
            chunk. A caption without any valid (non-empty) chunk gets the
            whole caption ``[0, num_valid_tokens)``.
        """
        B, L, _ = logits.shape
        if chunk_spans.dim() != 3 or chunk_spans.shape[0] != B or \
                chunk_spans.shape[-1] != 2:
            raise ValueError('chunk_spans must have shape (B, K, 2) with '
                             f'B={B}, got {tuple(chunk_spans.shape)}')
        if chunk_valid.shape != chunk_spans.shape[:2]:
            raise ValueError(f'chunk_valid shape {tuple(chunk_valid.shape)} '
                             'does not match chunk_spans '
                             f'{tuple(chunk_spans.shape)}')
        probs = logits.float().softmax(-1)[..., 1]
        probs = probs.masked_fill(word_pad_mask, float('-inf'))
        arange = torch.arange(L, device=logits.device)
        start, end = chunk_spans[..., 0:1], chunk_spans[..., 1:2]
        # token membership of every chunk: (B, K, L)
        in_chunk = (arange >= start) & (arange < end)
        chunk_ok = chunk_valid & in_chunk.any(-1)
        chunk_prob = torch.where(in_chunk, probs[:, None, :],
                                 probs.new_tensor(float('-inf'))).amax(-1)
        chunk_prob = chunk_prob.masked_fill(~chunk_ok, float('-inf'))
        # torch.argmax returns the first maximal index -> earliest chunk
        best = chunk_prob.argmax(-1)
        span = chunk_spans.gather(
            1, best[:, None, None].expand(-1, 1, 2)).squeeze(1)
        num_valid = (~word_pad_mask).sum(-1)
        fallback = torch.stack([torch.zeros_like(num_valid), num_valid], -1)
        return torch.where(chunk_ok.any(-1, keepdim=True), span, fallback)

    def loss(self, logits: Tensor, word_pad_mask: Tensor,
             gt_labels: Tensor) -> Dict[str, Tensor]:
        """Subject loss (``loss_subject``) of a batch of captions.

        Args:
            logits (Tensor): (B, L, 2).
            word_pad_mask (Tensor): Bool (B, L), True = padding.
            gt_labels (Tensor): Long (B, L) in {0, 1, -100}; -100 = ignored.

        Returns:
            dict: ``loss_subject`` (scalar Tensor).
        """
        return dict(
            loss_subject=self.loss_subject(logits, word_pad_mask, gt_labels))
