# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.layers.transformer import DeformableDetrTransformerEncoder
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.utils import OptConfigType, OptMultiConfig
from ..utils.misc import flatten_mlvl, get_valid_ratio, masked_mean
from .bert_layer import BertStyleEncoderLayer
from .feature_resizer import FeatureResizer
from .ms_deform_attn import DeformableEncoderLayer
from .positional_encoding import SinePositionalEncoding1D
from .vl_fusion import VisionLanguageFusion


def flatten_encoder_inputs(mlvl_feats: List[Tensor],
                           mlvl_pad_masks: List[Tensor],
                           mlvl_pos: List[Tensor]) -> Dict[str, Tensor]:
    """Prepare the visual levels for the encoder (mmdet's
    ``pre_transformer`` of Deformable DETR): flatten them into one token
    sequence per frame and compute what the deformable attention needs.

    Args:
        mlvl_feats (list[Tensor]): num_levels maps (BT, D, h_l, w_l).
        mlvl_pad_masks (list[Tensor]): Bool (BT, h_l, w_l), True = pad.
        mlvl_pos (list[Tensor]): Sine positions (BT, D, h_l, w_l).

    Returns:
        dict[str, Tensor]: ``feat`` (BT, S_hw, D), ``feat_pos`` (BT, S_hw,
        D), ``feat_mask`` bool (BT, S_hw), ``level_ids`` long (S_hw,),
        ``spatial_shapes`` long (num_levels, 2) (h, w),
        ``level_start_index`` long (num_levels,), ``valid_ratios`` (BT,
        num_levels, 2) and ``reference_points`` (BT, S_hw, num_levels, 2),
        S_hw = sum of h_l * w_l.
    """
    device = mlvl_feats[0].device
    hw = [tuple(f.shape[-2:]) for f in mlvl_feats]
    spatial_shapes = torch.as_tensor(hw, dtype=torch.long, device=device)
    level_start_index = torch.cat((spatial_shapes.new_zeros(
        (1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))
    level_ids = torch.cat([
        torch.full((h * w, ), lvl, dtype=torch.long, device=device)
        for lvl, (h, w) in enumerate(hw)
    ])
    valid_ratios = torch.stack([get_valid_ratio(m) for m in mlvl_pad_masks],
                               1)
    reference_points = \
        DeformableDetrTransformerEncoder.get_encoder_reference_points(
            spatial_shapes, valid_ratios, device=device)
    # [(b t), c, h_l, w_l] x num_levels -> [(b t), S_hw, c]
    return dict(
        feat=flatten_mlvl(mlvl_feats),
        feat_pos=flatten_mlvl(mlvl_pos),
        feat_mask=flatten_mlvl(mlvl_pad_masks),
        level_ids=level_ids,
        spatial_shapes=spatial_shapes,
        level_start_index=level_start_index,
        valid_ratios=valid_ratios,
        reference_points=reference_points)


@MODELS.register_module()
class InteractionBranch(BaseModule):
    """One interaction branch of DMFormer (context- or subject-aware).

    ``num_iters`` times::

        vision <- VisionLanguageFusion(vision, text)      # all T frames
        vision <- DeformableDetrTransformerEncoderLayer(vision)  # per frame
        text   <- BertStyleEncoderLayer(text)

    then ``vision_resizer`` (D -> out) on the visual tokens and
    ``text_resizer`` (D -> out) on the sentence feature and the words;
    ``text_embed = resized sentence + 0.5 * masked mean of resized words``
    (the official code also averages padded word positions).

    The official code applies the fusion module separately to each of the
    4 levels (query = all frames of a video at that level). Because the
    fusion has no query-query interaction (every visual token only attends
    to the text), applying the shared module once to the concatenation of
    all levels is mathematically identical; this is what is done here.

    The deformable layer is mmdet's
    :class:`~mmdet.models.layers.transformer.DeformableDetrTransformerEncoderLayer`
    (multi-scale deformable attention + FFN, post-norm; here with
    :class:`~dmformer.models.layers.MSDeformAttn`, mmcv's attention with a
    faster CPU inference path) = the
    ``DeformableTransformerEncoderLayer`` of Deformable DETR; its position is
    the visual sine position plus the branch's own ``level_embed``.

    Args:
        embed_dims (int): Width D. Defaults to 256.
        out_channels (int): Output width of the resizers. Defaults to 128.
        num_levels (int): Number of feature levels. Defaults to 4.
        num_iters (int): Number of (fusion, deformable, BERT) iterations.
            Defaults to 2.
        fusion_heads (int): Heads of the fusion attention. Defaults to 8.
        encoder_layer_cfg (dict, optional): Overrides of the deformable
            encoder layer config (``self_attn_cfg`` / ``ffn_cfg`` are merged
            into the defaults: 8 heads, 4 points, dropout 0.1, FFN 2048 ReLU
            with dropout 0.1). Defaults to None.
        text_layer_cfg (dict, optional): Overrides of the
            :class:`BertStyleEncoderLayer` kwargs (defaults: 8 heads, FFN
            3072, dropout 0.1; ``embed_dims`` is set here).
        resizer_dropout (float): Dropout of the resizers. Defaults to 0.1.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 out_channels: int = 128,
                 num_levels: int = 4,
                 num_iters: int = 2,
                 fusion_heads: int = 8,
                 encoder_layer_cfg: OptConfigType = None,
                 text_layer_cfg: OptConfigType = None,
                 resizer_dropout: float = 0.1,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_iters < 1:
            raise ValueError(f'num_iters must be >= 1, got {num_iters}')
        encoder_layer_cfg = _encoder_layer_cfg(encoder_layer_cfg,
                                               embed_dims, num_levels)
        text_layer_cfg = dict(
            dict(num_heads=8, feedforward_channels=3072, dropout=0.1),
            **(text_layer_cfg or {}))
        text_layer_cfg['embed_dims'] = embed_dims

        self.embed_dims = embed_dims
        self.out_channels = out_channels
        self.num_levels = num_levels
        self.num_iters = num_iters
        self.vl_fusions = ModuleList([
            VisionLanguageFusion(embed_dims, fusion_heads)
            for _ in range(num_iters)
        ])
        self.encoder_layers = ModuleList([
            DeformableEncoderLayer(**encoder_layer_cfg)
            for _ in range(num_iters)
        ])
        self.text_layers = ModuleList([
            BertStyleEncoderLayer(**text_layer_cfg) for _ in range(num_iters)
        ])
        self.level_embed = nn.Parameter(torch.empty(num_levels, embed_dims))
        nn.init.normal_(self.level_embed)
        self.vision_resizer = FeatureResizer(
            embed_dims, out_channels, dropout=resizer_dropout)
        self.text_resizer = FeatureResizer(
            embed_dims, out_channels, dropout=resizer_dropout)

    def init_weights(self) -> None:
        """Initialize the sub-modules and ``level_embed`` (normal)."""
        super().init_weights()
        nn.init.normal_(self.level_embed)

    def forward(self, query: Tensor, query_pos: Tensor, query_pad_mask: Tensor,
                level_ids: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor,
                valid_ratios: Tensor, text: Tensor, text_pad_mask: Tensor,
                text_pos: Tensor, sentence_feat: Tensor,
                num_frames: int) -> Tuple[Tensor, Tensor]:
        """Run the branch.

        Args:
            query (Tensor): Flattened visual tokens of the 4 levels
                (BT, S_hw, D), frames video-major.
            query_pos (Tensor): Visual sine positions (BT, S_hw, D).
            query_pad_mask (Tensor): Bool (BT, S_hw), True = padding.
            level_ids (Tensor): Long (S_hw,), level of every token.
            reference_points (Tensor): (BT, S_hw, num_levels, 2).
            spatial_shapes (Tensor): Long (num_levels, 2), (h, w).
            level_start_index (Tensor): Long (num_levels,).
            valid_ratios (Tensor): (BT, num_levels, 2).
            text (Tensor): Text tokens of the branch (B, N, D).
            text_pad_mask (Tensor): Bool (B, N), True = padding.
            text_pos (Tensor): Text positions (B, N, D).
            sentence_feat (Tensor): (B, D).
            num_frames (int): T.

        Returns:
            tuple[Tensor, Tensor]: visual tokens (BT, S_hw, out) and text
            embedding (B, out).
        """
        BT, S, D = query.shape
        B = BT // num_frames
        pos = query_pos + self.level_embed[level_ids]
        for i in range(self.num_iters):
            # [(b t), s, c] -> [b, (t s), c]: all frames of a video form
            # one query sequence of the fusion
            x = query.reshape(B, num_frames * S, D)
            x = self.vl_fusions[i](x, text, text_pad_mask, text_pos)
            # [b, (t s), c] -> [(b t), s, c]
            query = x.reshape(BT, S, D)
            query = self.encoder_layers[i](
                query=query,
                query_pos=pos,
                key_padding_mask=query_pad_mask,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                valid_ratios=valid_ratios,
                reference_points=reference_points)
            text = self.text_layers[i](text, text_pad_mask)
        vision = self.vision_resizer(query)
        words = self.text_resizer(text)
        sentence = self.text_resizer(sentence_feat)
        text_embed = sentence + 0.5 * masked_mean(words, text_pad_mask)
        return vision, text_embed


def _encoder_layer_cfg(cfg: OptConfigType, embed_dims: int,
                       num_levels: int) -> dict:
    """Deformable encoder layer config: defaults of the official branch
    layers (8 heads, 4 points, dropout 0.1, FFN 2048 ReLU with dropout 0.1)
    updated with ``cfg``; widths and levels are set from the branch."""
    cfg = dict(cfg or {})
    self_attn_cfg = dict(num_heads=8, num_points=4, dropout=0.1)
    self_attn_cfg.update(cfg.get('self_attn_cfg', {}))
    self_attn_cfg.update(
        embed_dims=embed_dims, num_levels=num_levels, batch_first=True)
    ffn_cfg = dict(
        feedforward_channels=2048,
        num_fcs=2,
        ffn_drop=0.1,
        act_cfg=dict(type='ReLU', inplace=True))
    ffn_cfg.update(cfg.get('ffn_cfg', {}))
    ffn_cfg['embed_dims'] = embed_dims
    cfg.update(self_attn_cfg=self_attn_cfg, ffn_cfg=ffn_cfg)
    return cfg


@MODELS.register_module()
class DecoupledInteraction(BaseModule):
    """Decoupled context/subject interaction encoder of DMFormer.

    Replaces the transformer encoder: a context-aware branch fuses the
    visual tokens with all the words of the caption, a subject-aware branch
    with the words of the subject span only. Each branch
    (:class:`InteractionBranch`) outputs ``embed_dims // num_branches``
    channels; the memory is the channel concatenation (context first) and
    ``text_embed`` the concatenation of the branch text embeddings. Either
    branch can be disabled (``None``) for ablations, the other then outputs
    the full width.

    Args:
        embed_dims (int): Width D. Defaults to 256.
        num_levels (int): Number of feature levels. Defaults to 4.
        context_branch (dict, optional): kwargs of the context
            :class:`InteractionBranch` (``embed_dims``, ``out_channels`` and
            ``num_levels`` are set here). None disables it.
        subject_branch (dict, optional): Same for the subject branch.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_levels: int = 4,
                 context_branch: OptConfigType = dict(num_iters=2),
                 subject_branch: OptConfigType = dict(num_iters=2),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        branches = [b for b in (context_branch, subject_branch)
                    if b is not None]
        if not branches:
            raise ValueError('DecoupledInteraction needs at least one of '
                             'context_branch / subject_branch')
        if embed_dims % len(branches) != 0:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by '
                             f'the {len(branches)} active branches')
        self.embed_dims = embed_dims
        self.num_levels = num_levels
        out_channels = embed_dims // len(branches)

        def build(cfg: Optional[dict]) -> Optional[InteractionBranch]:
            if cfg is None:
                return None
            cfg = dict(cfg)
            cfg.pop('type', None)
            cfg.update(
                embed_dims=embed_dims,
                out_channels=out_channels,
                num_levels=num_levels)
            return InteractionBranch(**cfg)

        self.context_branch = build(context_branch)
        self.subject_branch = build(subject_branch)
        self.subject_pos_enc = SinePositionalEncoding1D(embed_dims)

    @property
    def with_subject_branch(self) -> bool:
        """bool: whether the subject branch is active."""
        return self.subject_branch is not None

    def gather_subject(self, word_feats: Tensor, subject_span: Tensor
                       ) -> Tuple[Tensor, Tensor, Tensor]:
        """Gather the subject span of every caption (batched).

        Args:
            word_feats (Tensor): (B, L, D).
            subject_span (Tensor): Long (B, 2) token span ``[start, end)``.

        Returns:
            tuple[Tensor, Tensor, Tensor]: span features (B, S, D) (zeros on
            padding), bool pad mask (B, S) and sine positions (B, S, D), with
            S = the longest span of the batch.
        """
        B, L, D = word_feats.shape
        if subject_span is None or subject_span.shape != (B, 2):
            got = None if subject_span is None else tuple(subject_span.shape)
            raise ValueError(
                f'subject_span must be a ({B}, 2) long tensor, got {got}')
        start = subject_span[:, 0]
        length = subject_span[:, 1] - start
        # single host sync: the span length fixes the tensor size
        min_len, max_len = (int(v) for v in length.aminmax())
        if min_len < 1 or int(subject_span.max()) > L or \
                int(start.min()) < 0:
            raise ValueError('subject_span must hold non-empty [start, end) '
                             f'token spans within [0, {L}], got '
                             f'{subject_span.tolist()}')
        arange = torch.arange(max_len, device=word_feats.device)
        index = (start[:, None] + arange).clamp(max=L - 1)
        pad_mask = arange[None] >= length[:, None]
        feats = word_feats.gather(1, index[..., None].expand(-1, -1, D))
        feats = feats.masked_fill(pad_mask[..., None], 0.)
        pos = self.subject_pos_enc(pad_mask).to(word_feats.dtype)
        return feats, pad_mask, pos

    def forward(self, feat: Tensor, feat_pos: Tensor, feat_mask: Tensor,
                level_ids: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, valid_ratios: Tensor,
                reference_points: Tensor, word_feats: Tensor,
                word_pad_mask: Tensor, text_pos: Tensor,
                sentence_feat: Tensor, subject_span: Optional[Tensor],
                num_frames: int) -> Dict[str, Tensor]:
        """Run the active branches and merge them.

        Args:
            feat (Tensor): The visual levels flattened into one token
                sequence per frame, (BT, S_hw, D); see
                :func:`flatten_encoder_inputs` for these first eight
                arguments.
            feat_pos (Tensor): Sine positions of the tokens (BT, S_hw, D).
            feat_mask (Tensor): Bool (BT, S_hw), True = padding.
            level_ids (Tensor): Long (S_hw,), level of every token.
            spatial_shapes (Tensor): Long (num_levels, 2), (h, w).
            level_start_index (Tensor): Long (num_levels,).
            valid_ratios (Tensor): (BT, num_levels, 2).
            reference_points (Tensor): (BT, S_hw, num_levels, 2).
            word_feats (Tensor): (B, L, D) resized word features.
            word_pad_mask (Tensor): Bool (B, L), True = padding.
            text_pos (Tensor): (B, L, D) positions of the words.
            sentence_feat (Tensor): (B, D).
            subject_span (Tensor, optional): Long (B, 2) token span
                ``[start, end)`` of the subject; needed by the subject
                branch only.
            num_frames (int): T, frames per video.

        Returns:
            dict: ``memory`` (BT, S_hw, D) (context channels first),
            ``memory_pad_mask`` bool (BT, S_hw), ``spatial_shapes`` long
            (num_levels, 2) (h, w), ``level_start_index`` long
            (num_levels,), ``valid_ratios`` (BT, num_levels, 2) and
            ``text_embed`` (B, D).
        """
        if spatial_shapes.shape[0] != self.num_levels:
            raise ValueError(f'expected {self.num_levels} levels, got '
                             f'{spatial_shapes.shape[0]}')
        BT = feat.shape[0]
        B = word_feats.shape[0]
        if BT != B * num_frames:
            raise ValueError(f'{BT} frames do not match {B} captions x '
                             f'num_frames={num_frames}')
        common = dict(
            query=feat,
            query_pos=feat_pos,
            query_pad_mask=feat_mask,
            level_ids=level_ids,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            sentence_feat=sentence_feat,
            num_frames=num_frames)

        memories, text_embeds = [], []
        if self.context_branch is not None:
            vision, text_embed = self.context_branch(
                text=word_feats,
                text_pad_mask=word_pad_mask,
                text_pos=text_pos,
                **common)
            memories.append(vision)
            text_embeds.append(text_embed)
        if self.subject_branch is not None:
            sub_feats, sub_pad_mask, sub_pos = self.gather_subject(
                word_feats, subject_span)
            vision, text_embed = self.subject_branch(
                text=sub_feats,
                text_pad_mask=sub_pad_mask,
                text_pos=sub_pos,
                **common)
            memories.append(vision)
            text_embeds.append(text_embed)
        return dict(
            memory=torch.cat(memories, -1),
            memory_pad_mask=feat_mask,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            text_embed=torch.cat(text_embeds, -1))
