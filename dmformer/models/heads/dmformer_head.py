# Copyright (c) OpenMMLab. All rights reserved.
import copy
import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.models.layers.transformer import MLP, inverse_sigmoid
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule, ModuleList, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from dmformer.registry import MODELS, TASK_UTILS
from dmformer.structures import RVOSDataSample
from dmformer.utils import ConfigType, OptConfigType, OptMultiConfig
from ..layers.ms_deform_attn import DeformableDecoder


@MODELS.register_module()
class DMFormerHead(BaseModule):
    """Decoder, prediction heads, pixel decoder and losses of DMFormer.

    Everything after the interaction neck of DMFormer ("Decoupled
    Multimodal Transformers for Referring Video Object Segmentation"): the
    decoder, heads, losses, matcher and inference are those of `ReferFormer
    <https://arxiv.org/abs/2201.00487>`_. Code is
    modified from the `official github repo
    <https://github.com/gaomingqi/DMFormer>`_ (``models/dmmi.py``,
    ``models/deformable_transformer.py``, ``models/criterion.py``) and
    ReferFormer's.

    - Queries: content ``text_embed`` (B, D) repeated to every frame and
      query, position ``query_embedding.weight`` (Q, D), initial reference
      ``sigmoid(reference_points_fc(query_pos))`` (cx, cy).
    - Decoder: mmdet's :class:`DeformableDetrTransformerDecoder` (post-norm
      layers: self-attn, multi-scale deformable cross-attn, FFN; as
      :class:`~dmformer.models.layers.DeformableDecoder`, with the faster
      CPU inference path of the cross-attention) with
      iterative box refinement through ``reg_branches`` (the first layer
      offsets only (cx, cy) of the 2-d reference, then 4-d boxes; references
      are detached), which reproduces the official decoder.
    - Heads per decoder layer ``l``: ``cls_branches[l]`` (Linear) and the
      box ``sigmoid(reg_branches[l](hs[l]) + inverse_sigmoid(ref))`` with
      ``ref`` the initial reference for ``l = 0`` and the refined box of
      layer ``l - 1`` afterwards.
    - Masks: :class:`CrossModalFPNDecoder` over the stride-4 backbone map and
      the first three levels of the memory, then :class:`DynamicMaskHead`
      whose relative coordinates use the refined box centres of the same
      decoder layer.
    - Losses (per decoder layer, aux layers prefixed ``d{l}.``): sigmoid
      focal class loss, L1 + GIoU box losses on the matched query in every
      frame, sigmoid focal + dice mask losses on the matched query's clip,
      all normalised by the number of valid frames in the batch.

    Args:
        decoder (dict): Kwargs of mmdet's
            :class:`DeformableDetrTransformerDecoder`, built as
            :class:`~dmformer.models.layers.DeformableDecoder` (the model
            config gives them; the paper's are in
            ``configs/_base_/models/dmformer_swin-t.py``).
        pixel_decoder (dict): Config of the pixel decoder (registered in
            ``MODELS``, e.g. :class:`CrossModalFPNDecoder`).
        num_queries (int): Queries per frame Q. Defaults to 5.
        embed_dims (int): Hidden dimension D. Defaults to 256.
        num_classes (int): Number of classes; 1 for binary referring, in
            which case ``gt_instances.labels`` is ignored. Defaults to 1.
        mask_head (dict): Config of the dynamic mask head; ``type`` defaults
            to ``'DynamicMaskHead'``, ``in_channels`` to the pixel decoder's
            ``mask_dim`` and ``query_channels`` to ``embed_dims``.
        matcher (dict, optional): Deprecated spelling of
            ``train_cfg.assigner``, kept so that older configs build (with a
            warning). Defaults to None.
        loss_cls (dict): Class loss. Defaults to mmdet ``FocalLoss``
            (alpha 0.25, gamma 2, weight 2).
        loss_bbox (dict): Box L1 loss. Defaults to mmdet ``L1Loss`` (5).
        loss_iou (dict): Box IoU loss. Defaults to mmdet ``GIoULoss`` (2).
        loss_mask (dict): Mask loss. Defaults to mmdet ``FocalLoss`` (2).
        loss_dice (dict): Dice loss. Defaults to mmdet ``DiceLoss`` with
            ``naive_dice=True, eps=1`` (5).
        with_aux_loss (bool): Whether to add the losses of the intermediate
            decoder layers. Defaults to True.
        loss_ref_map (dict, optional): Training-only auxiliary loss on a
            *referring map*: a linear layer scores every stride-8 token of
            the interaction memory and the scores are supervised with the
            referred object's mask (average-pooled to stride 8, so boundary
            cells get soft targets). It gives the text-vision fusion a
            direct, dense signal to mark the referent, which speeds up
            grounding when everything is trained from scratch. None (the
            default, as the paper model) disables it; the predictions never
            use it.
        loss_ref_map_dice (dict, optional): Dice loss on the same map; only
            used with ``loss_ref_map``. Defaults to None.
        ref_map_reference (bool): Start the decoder queries at the referring
            map's peaks instead of at learned points: the Q initial
            reference points of a frame are the centres of its Q highest
            scoring stride-8 cells (detached; the map is then computed at
            test time too). A learned point is the same in every image, so
            a query has to find the referent from there with a few sparse
            deformable samples; the map already scores every cell against
            the sentence. Requires ``loss_ref_map``. Defaults to False (the
            paper model).
        loss_query (dict, optional): Training-only auxiliary loss that
            treats the choice of the query as a classification over the Q
            queries of a frame: a softmax cross-entropy on the class logits
            with the matched query as the target, in every valid frame and
            decoder layer. The sigmoid class loss scores each query on its
            own; this one compares them, which is exactly how a query is
            picked at test time (the highest score). None (the default, as
            the paper model) disables it.
        train_cfg (dict, optional): ``assigner``: config of the matcher that
            picks the query of each clip's referent (``TASK_UTILS``; as in
            mmdet's DETR heads, set from the detector's ``train_cfg``);
            ``mask_loss_upsample`` (bool): compute ``loss_mask`` and
            ``loss_dice`` on the mask logits upsampled x
            ``mask_feat_stride`` (bilinear, exactly as at test time) against
            the full-resolution GT masks, instead of on the stride-4 logits
            against GT masks point-sampled every ``mask_feat_stride`` pixels
            (the default, False, as ReferFormer and the paper). The point
            samples of a small object's mask lose its outline: on 112-pixel
            frames the best possible J of a sampled-then-upsampled mask is
            about 0.78. The matcher and the referring map still use the
            sampled masks. Defaults to None: ``dict(assigner=dict(
            type='VideoQueryMatcher'), mask_loss_upsample=False)``.
        test_cfg (dict, optional): ``mask_thr`` (default 0.5),
            ``return_mask_probs`` (default False: also return the float
            mask probabilities as ``mask_probs``, e.g. for Ref-DAVIS) and
            ``mask_upsample``, how the chosen query's stride-4 mask logits
            reach the output size (see :meth:`predict_by_feat`):
            ``'two_step'`` (the default) upsamples them x
            ``mask_feat_stride`` to the padded input, crops ``img_shape``
            and resizes that to ``ori_shape``; ``'one_step'`` resizes the
            logits that cover ``img_shape`` to ``ori_shape`` at once, as
            the official ``inference_ytvos.py``.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    #: values of ``test_cfg.mask_upsample``
    MASK_UPSAMPLE_MODES = ('two_step', 'one_step')

    def __init__(
        self,
        decoder: ConfigType,
        pixel_decoder: ConfigType,
        num_queries: int = 5,
        embed_dims: int = 256,
        num_classes: int = 1,
        mask_head: ConfigType = dict(
            type='DynamicMaskHead',
            controller_layers=3,
            dynamic_mask_channels=8,
            mask_feat_stride=4,
            rel_coord=True),
        matcher: OptConfigType = None,
        loss_cls: ConfigType = dict(
            type='mmdet.FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_bbox: ConfigType = dict(type='mmdet.L1Loss', loss_weight=5.0),
        loss_iou: ConfigType = dict(type='mmdet.GIoULoss', loss_weight=2.0),
        loss_mask: ConfigType = dict(
            type='mmdet.FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_dice: ConfigType = dict(
            type='mmdet.DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        with_aux_loss: bool = True,
        loss_ref_map: OptConfigType = None,
        loss_ref_map_dice: OptConfigType = None,
        ref_map_reference: bool = False,
        loss_query: OptConfigType = None,
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = dict(mask_thr=0.5),
        init_cfg: OptMultiConfig = None
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_queries = num_queries
        self.embed_dims = embed_dims
        self.num_classes = num_classes
        self.with_aux_loss = with_aux_loss
        self.test_cfg = dict(
            mask_thr=0.5, return_mask_probs=False, mask_upsample='two_step')
        if test_cfg is not None:
            self.test_cfg.update(test_cfg)
        self._check_mask_upsample()

        if ref_map_reference and loss_ref_map is None:
            raise ValueError('DMFormerHead: ref_map_reference=True needs '
                             'loss_ref_map (the map is learned from it)')
        self.ref_map_reference = ref_map_reference
        self.query_embedding = nn.Embedding(num_queries, embed_dims)
        if not ref_map_reference:
            self.reference_points_fc = nn.Linear(embed_dims, 2)
        self.decoder = DeformableDecoder(**copy.deepcopy(decoder))
        if self.decoder.embed_dims != embed_dims:
            raise ValueError('DMFormerHead: decoder embed_dims '
                             f'{self.decoder.embed_dims} != {embed_dims}')
        self.num_pred_layers = self.decoder.num_layers
        # one (cls, reg) branch per decoder layer; the reg branches are also
        # the decoder's box-refinement branches (passed at forward time)
        cls_branch = nn.Linear(embed_dims, num_classes)
        reg_branch = MLP(embed_dims, embed_dims, 4, 3)
        self.cls_branches = ModuleList(
            [copy.deepcopy(cls_branch) for _ in range(self.num_pred_layers)])
        self.reg_branches = ModuleList(
            [copy.deepcopy(reg_branch) for _ in range(self.num_pred_layers)])

        self.pixel_decoder = MODELS.build(copy.deepcopy(pixel_decoder))
        mask_head = copy.deepcopy(mask_head)
        mask_head.setdefault('type', 'DynamicMaskHead')
        mask_head.setdefault('in_channels', self.pixel_decoder.mask_dim)
        mask_head.setdefault('query_channels', embed_dims)
        self.mask_head = MODELS.build(mask_head)
        self.mask_feat_stride = self.mask_head.mask_feat_stride

        train_cfg = dict(train_cfg or {})
        if matcher is not None:
            if 'assigner' in train_cfg:
                raise ValueError('DMFormerHead: give the matcher once, as '
                                 'train_cfg.assigner (matcher= is its old '
                                 'name)')
            warnings.warn('DMFormerHead: `matcher` is deprecated, configure '
                          "it as the model's train_cfg.assigner (as mmdet "
                          'DETR heads do)', DeprecationWarning)
            train_cfg['assigner'] = matcher
        train_cfg.setdefault('assigner', dict(type='VideoQueryMatcher'))
        train_cfg.setdefault('mask_loss_upsample', False)
        if not isinstance(train_cfg['mask_loss_upsample'], bool):
            raise ValueError('DMFormerHead: train_cfg.mask_loss_upsample '
                             'must be a bool, got '
                             f"{train_cfg['mask_loss_upsample']!r}")
        self.train_cfg = train_cfg
        self.mask_loss_upsample = train_cfg['mask_loss_upsample']
        # matches each clip's referent to one query (mmdet's ``assigner``)
        self.assigner = TASK_UTILS.build(copy.deepcopy(train_cfg['assigner']))
        self.loss_cls = MODELS.build(copy.deepcopy(loss_cls))
        self.loss_bbox = MODELS.build(copy.deepcopy(loss_bbox))
        self.loss_iou = MODELS.build(copy.deepcopy(loss_iou))
        self.loss_mask = MODELS.build(copy.deepcopy(loss_mask))
        self.loss_dice = MODELS.build(copy.deepcopy(loss_dice))
        self.loss_query = MODELS.build(copy.deepcopy(loss_query)) \
            if loss_query is not None else None
        self.with_ref_map = loss_ref_map is not None
        if self.with_ref_map:
            self.ref_map_fc = nn.Linear(embed_dims, 1)
            self.loss_ref_map = MODELS.build(copy.deepcopy(loss_ref_map))
            self.loss_ref_map_dice = MODELS.build(
                copy.deepcopy(loss_ref_map_dice)) \
                if loss_ref_map_dice is not None else None

    def _check_mask_upsample(self) -> str:
        """Return ``test_cfg.mask_upsample`` after checking it."""
        mode = self.test_cfg.get('mask_upsample', 'two_step')
        if mode not in self.MASK_UPSAMPLE_MODES:
            raise ValueError('DMFormerHead: test_cfg.mask_upsample must be '
                             f'one of {self.MASK_UPSAMPLE_MODES}, got '
                             f'{mode!r}')
        return mode

    def init_weights(self) -> None:
        """Initialize weights like the official model.

        Decoder: xavier-uniform on every >1-D parameter, then the deformable
        attentions' own init; reference point Linear: xavier-uniform, zero
        bias. Heads: the class branches get the prior-probability bias
        ``-log(99)``; the box MLPs get a zero last layer; all per-layer
        branches start identical (deep copies) except ``reg_branches[0]``,
        whose last bias (w, h) part is -2.
        """
        super().init_weights()
        for p in self.decoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.decoder.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()
        if not self.ref_map_reference:
            nn.init.xavier_uniform_(self.reference_points_fc.weight)
            nn.init.zeros_(self.reference_points_fc.bias)

        cls0, reg0 = self.cls_branches[0], self.reg_branches[0]
        cls0.reset_parameters()
        nn.init.constant_(cls0.bias, bias_init_with_prob(0.01))
        for layer in reg0.layers[:-1]:
            layer.reset_parameters()
        nn.init.zeros_(reg0.layers[-1].weight)
        nn.init.zeros_(reg0.layers[-1].bias)
        for i in range(1, self.num_pred_layers):
            self.cls_branches[i].load_state_dict(cls0.state_dict())
            self.reg_branches[i].load_state_dict(reg0.state_dict())
        nn.init.constant_(reg0.layers[-1].bias[2:], -2.0)

    def pre_decoder(self, memory: Tensor, valid_ratios: Tensor,
                    text_embed: Tensor, num_frames: int,
                    s8_pad_mask: Tensor) -> Dict[str, Optional[Tensor]]:
        """Build the decoder's queries and initial reference points (mmdet's
        ``pre_decoder``).

        Every frame gets ``num_queries`` queries whose content is the
        video's text embedding and whose positions are the learnt query
        embeddings. The initial reference points come from the query
        embeddings, or (``ref_map_reference``) from the peaks of the
        referring map, which is computed from the stride-8 level of the
        memory whenever it is needed (training, or as the reference).

        Args:
            memory (Tensor): Interaction memory (B*T, S, D), stride-8 level
                first.
            valid_ratios (Tensor): (B*T, num_levels, 2).
            text_embed (Tensor): Content query of every video, (B, D).
            num_frames (int): Frames per video T.
            s8_pad_mask (Tensor): Bool padding mask of the stride-8 level,
                (B*T, h8, w8).

        Returns:
            dict: ``query`` and ``query_pos`` (B*T, Q, D),
            ``reference_points`` (B*T, Q, 2) in [0, 1] and ``ref_map``
            (B*T, h8, w8) logits or None.
        """
        bt, _, dims = memory.shape
        b = text_embed.size(0)
        q = self.num_queries
        # (B, D) -> (B*T, Q, D)
        query = text_embed[:, None, None, :].expand(b, num_frames, q, dims)
        query = query.reshape(bt, q, dims)
        # (Q, D) -> (B*T, Q, D)
        query_pos = self.query_embedding.weight[None].expand(bt, -1, -1)
        ref_map = None
        if self.with_ref_map and (self.training or self.ref_map_reference):
            # stride-8 level of the memory: (B*T, h*w, D) -> (B*T, h, w)
            h8, w8 = s8_pad_mask.shape[-2:]
            ref_map = self.ref_map_fc(memory[:, :h8 * w8]).view(bt, h8, w8)
        if self.ref_map_reference:
            reference_points = self._ref_map_peaks(ref_map.detach(),
                                                   s8_pad_mask,
                                                   valid_ratios[:, 0])
        else:
            reference_points = self.reference_points_fc(query_pos).sigmoid()
        return dict(
            query=query,
            query_pos=query_pos,
            reference_points=reference_points,
            ref_map=ref_map)

    def forward(self,
                memory: Tensor,
                memory_pad_mask: Tensor,
                spatial_shapes: Tensor,
                level_start_index: Tensor,
                valid_ratios: Tensor,
                text_embed: Tensor,
                num_frames: int,
                pixel_inputs: Dict[str, List[Tensor]],
                word_feats: Tensor,
                word_pad_mask: Tensor,
                text_pos: Tensor,
                img_shapes: Sequence[Tuple[int, int]],
                decoder_inputs: Optional[Dict[str, Optional[Tensor]]] = None
                ) -> Dict[str, Tensor]:
        """Decode the queries and predict classes, boxes and masks.

        Args:
            memory (Tensor): Interaction memory, has shape (B*T, S, D) in
                video-major (b t) order, S = sum of h_l * w_l of the levels
                (strides 8, 16, 32, 64).
            memory_pad_mask (Tensor): Bool, True = padding, (B*T, S).
            spatial_shapes (Tensor): Long (num_levels, 2), (h, w) per level.
            level_start_index (Tensor): Long (num_levels,).
            valid_ratios (Tensor): Has shape (B*T, num_levels, 2).
            text_embed (Tensor): Content query of every video, (B, D).
            num_frames (int): Frames per video T.
            pixel_inputs (dict[str, list[Tensor]]): ``feats``: [stride-4
                backbone map (B*T, C4, H/4, W/4)]; ``mlvl_pad_masks``: bool
                padding masks (B*T, h, w) of strides 4, 8, 16, 32;
                ``mlvl_pos``: positional encodings (B*T, D, h, w) of the
                same strides. The memory levels 0-2 must have the sizes of
                the stride 8/16/32 masks. Optional ``clip_groups`` (from a
                batch-invariant detector): ``(frame rows, [(h, w) of the
                strides 4..32])`` per group of clips with the same padded
                size; the pixel decoder then runs per group on those sizes.
            word_feats (Tensor): Word features, (B, L, D).
            word_pad_mask (Tensor): Bool, True = padding, (B, L).
            text_pos (Tensor): Word positional encoding, (B, L, D).
            img_shapes (list[tuple[int, int]]): Unpadded input size (h, w)
                of every video.
            decoder_inputs (dict, optional): :meth:`pre_decoder` outputs
                (the detector's ``pre_decoder`` stage); computed here when
                not given.

        Returns:
            dict[str, Tensor]:

            - all_cls_scores (Tensor): Logits, has shape
              (num_dec_layers, B, T, Q, num_classes).
            - all_bbox_preds (Tensor): Normalised (cx, cy, w, h), has shape
              (num_dec_layers, B, T, Q, 4).
            - all_mask_preds (Tensor): Mask logits at stride 4 of the padded
              input, has shape (num_dec_layers, B, T, Q, H/4, W/4).
            - mask_shapes (Tensor): Only with ``clip_groups``: the stride-4
              size (h, w) of every video's own padded input, long (B, 2);
              :meth:`predict_by_feat` upsamples that part only.
        """
        bt, _, dims = memory.shape
        b = text_embed.size(0)
        t = num_frames
        q = self.num_queries
        if b * t != bt:
            raise ValueError(f'DMFormerHead: memory has {bt} frames but '
                             f'text_embed has {b} videos x {t} frames')
        if len(img_shapes) != b:
            raise ValueError(f'DMFormerHead: got {len(img_shapes)} '
                             f'img_shapes for {b} videos')

        if decoder_inputs is None:
            decoder_inputs = self.pre_decoder(
                memory, valid_ratios, text_embed, num_frames,
                pixel_inputs['mlvl_pad_masks'][1])
        query = decoder_inputs['query']
        query_pos = decoder_inputs['query_pos']
        init_reference = decoder_inputs['reference_points']
        ref_map = decoder_inputs['ref_map']
        # hs: (L, B*T, Q, D); inter_references: (L, B*T, Q, 4)
        hs, inter_references = self.decoder(
            query=query,
            query_pos=query_pos,
            value=memory,
            key_padding_mask=memory_pad_mask,
            reference_points=init_reference,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            reg_branches=self.reg_branches)

        all_cls_scores, all_bbox_preds = [], []
        for lvl in range(self.num_pred_layers):
            reference = init_reference if lvl == 0 else \
                inter_references[lvl - 1]
            reference = inverse_sigmoid(reference)
            delta = self.reg_branches[lvl](hs[lvl])
            if reference.size(-1) == 4:
                bbox = delta + reference
            else:
                bbox = torch.cat([delta[..., :2] + reference, delta[..., 2:]],
                                 -1)
            all_bbox_preds.append(bbox.sigmoid())
            all_cls_scores.append(self.cls_branches[lvl](hs[lvl]))
        num_layers = self.num_pred_layers
        # (L, B*T, Q, K) -> (L, B, T, Q, K)
        all_cls_scores = torch.stack(all_cls_scores).view(
            num_layers, b, t, q, -1)
        all_bbox_preds = torch.stack(all_bbox_preds).view(
            num_layers, b, t, q, 4)

        mask_feats = self._forward_pixel_decoder(memory, pixel_inputs,
                                                 word_feats, word_pad_mask,
                                                 text_pos, num_frames)
        # (B*T, C, H, W) -> (B, T, C, H, W)
        mask_feats = mask_feats.view(b, t, *mask_feats.shape[1:])
        # all decoder layers at once, stacked along the query axis:
        # (L, B*T, Q, D) -> (B, T, L*Q, D)
        query_feats = hs.view(num_layers, b, t, q, dims).permute(
            1, 2, 0, 3, 4).reshape(b, t, num_layers * q, dims)
        # (L, B*T, Q, 4) -> (B, T, L*Q, 2) refined box centres
        ref_points = inter_references[..., :2].view(
            num_layers, b, t, q, 2).permute(1, 2, 0, 3,
                                            4).reshape(b, t, num_layers * q,
                                                       2)
        mask_preds = self.mask_head(query_feats, mask_feats, ref_points,
                                    img_shapes)
        h, w = mask_preds.shape[-2:]
        # (B, T, L*Q, H, W) -> (L, B, T, Q, H, W)
        all_mask_preds = mask_preds.view(b, t, num_layers, q, h,
                                         w).permute(2, 0, 1, 3, 4, 5)
        clip_groups = pixel_inputs.get('clip_groups')
        if clip_groups:
            # stride-4 size of every video's own padded input, (B, 2)
            mask_shapes = all_mask_preds.new_empty((b, 2), dtype=torch.long)
            for rows, shapes in clip_groups:
                mask_shapes[rows[::num_frames] // num_frames] = \
                    mask_shapes.new_tensor(shapes[0])
        return dict(
            all_cls_scores=all_cls_scores,
            all_bbox_preds=all_bbox_preds,
            all_mask_preds=all_mask_preds,
            **(dict(mask_shapes=mask_shapes) if clip_groups else {}),
            **({} if ref_map is None or not self.training else dict(
                ref_map_logits=ref_map.view(b, t, *ref_map.shape[1:]))))

    def _ref_map_peaks(self, ref_map: Tensor, pad_mask: Tensor,
                       valid_ratios: Tensor) -> Tensor:
        """Initial reference points at the highest referring-map cells.

        Args:
            ref_map (Tensor): Logits, (B*T, h, w) at stride 8.
            pad_mask (Tensor): Bool, True = padding, (B*T, h, w).
            valid_ratios (Tensor): (w, h) share of the map that is not
                padding, (B*T, 2).

        Returns:
            Tensor: (x, y) of the centres of the ``num_queries`` best
            cells, normalised to the unpadded image, (B*T, Q, 2).
        """
        bt, h, w = ref_map.shape
        scores = ref_map.masked_fill(pad_mask, float('-inf')).flatten(1)
        idx = scores.topk(self.num_queries, dim=1)[1]  # (B*T, Q)
        cells = torch.stack([idx % w, idx // w], -1).to(ref_map.dtype)
        size = ref_map.new_tensor([w, h])
        # cell centre in the padded map, then relative to the valid part
        points = (cells + 0.5) / size / valid_ratios[:, None]
        return points.clamp(1e-3, 1 - 1e-3)

    def _forward_pixel_decoder(self, memory: Tensor,
                               pixel_inputs: Dict[str, List[Tensor]],
                               word_feats: Tensor, word_pad_mask: Tensor,
                               text_pos: Tensor, num_frames: int) -> Tensor:
        """Cut the memory into maps and run the pixel decoder.

        Returns:
            Tensor: Mask features, has shape (B*T, mask_dim, H/4, W/4).
        """
        for key in ('feats', 'mlvl_pad_masks', 'mlvl_pos'):
            if key not in pixel_inputs:
                raise ValueError(f'DMFormerHead: pixel_inputs lacks "{key}"')
        pad_masks = pixel_inputs['mlvl_pad_masks']
        mlvl_pos = pixel_inputs['mlvl_pos']
        bt, _, dims = memory.shape
        memory_maps = []
        start = 0
        # memory levels 0..n-2 have the sizes of pixel levels 1..n-1; the
        # python sizes of the masks avoid a host sync on spatial_shapes
        for mask in pad_masks[1:]:
            h, w = mask.shape[-2:]
            # (B*T, h*w, D) -> (B*T, D, h, w): at inference a channels-last
            # view (see CrossModalFPNDecoder), in training the layout its
            # results were obtained with
            level = memory[:, start:start + h * w]
            memory_maps.append(
                level.transpose(1, 2).reshape(bt, dims, h, w)
                if self.training or torch.is_grad_enabled() else
                level.view(bt, h, w, dims).permute(0, 3, 1, 2))
            start += h * w
        mlvl_feats = [pixel_inputs['feats'][0]] + memory_maps
        clip_groups = pixel_inputs.get('clip_groups')
        if not clip_groups:
            return self.pixel_decoder(mlvl_feats, pad_masks, mlvl_pos,
                                      word_feats, word_pad_mask, text_pos,
                                      num_frames)
        # batch-invariant: every group of clips at its own padded size, so
        # the convolutions, GroupNorms and reduced attention never see a
        # batch mate's padding; the rest of the canvas stays zero
        out = None
        for rows, shapes in clip_groups:
            videos = rows[::num_frames] // num_frames
            crop = [
                [x[rows, ..., :h, :w] for x, (h, w) in zip(xs, shapes)]
                for xs in (mlvl_feats, pad_masks, mlvl_pos)
            ]
            feats = self.pixel_decoder(*crop, word_feats[videos],
                                       word_pad_mask[videos],
                                       text_pos[videos], num_frames)
            if out is None:
                h, w = mlvl_feats[0].shape[-2:]
                out = feats.new_zeros(bt, feats.shape[1], h, w)
            out[rows, :, :feats.shape[-2], :feats.shape[-1]] = feats
        return out

    def get_targets(self, batch_data_samples: List[RVOSDataSample],
                    mask_shape: Tuple[int, int], num_frames: int,
                    device: torch.device) -> Dict[str, Tensor]:
        """Stack and convert the ground truth of a batch.

        GT boxes (xyxy pixels of the unpadded ``img_shape``) are normalised
        to cxcywh by ``img_shape`` (w, h) and zeroed where the object is
        absent; GT masks (padded to the batch input shape, or smaller) are
        point-sampled at ``mask_feat_stride`` starting at
        ``mask_feat_stride // 2`` and zero-padded to ``mask_shape``; with
        ``train_cfg.mask_loss_upsample`` the full-resolution masks, zero-
        padded to ``mask_shape`` x ``mask_feat_stride``, are added.

        Args:
            batch_data_samples (list[:obj:`RVOSDataSample`]): With
                ``gt_instances`` (masks, bboxes, valid[, labels]) and the
                ``img_shape`` meta.
            mask_shape (tuple[int, int]): (h, w) of the mask predictions.
            num_frames (int): Frames per video T.
            device (torch.device): Device of the targets.

        Returns:
            dict[str, Tensor]: ``gt_bboxes`` (B, T, 4), ``gt_masks``
            (B, T, h, w) float, ``gt_valid`` (B, T) bool, ``gt_labels``
            (B,) long and, with ``mask_loss_upsample``, ``gt_masks_full``
            (B, T, h * s, w * s) float.
        """
        s = self.mask_feat_stride
        h, w = mask_shape
        bboxes, masks, valids, labels, full_masks = [], [], [], [], []
        for i, data_sample in enumerate(batch_data_samples):
            if 'gt_instances' not in data_sample:
                raise ValueError(
                    f'DMFormerHead: data sample {i} has no gt_instances')
            gt = data_sample.gt_instances
            for key in ('bboxes', 'masks', 'valid'):
                if key not in gt or not isinstance(gt.get(key), Tensor):
                    raise ValueError(f'DMFormerHead: gt_instances.{key} of '
                                     f'sample {i} must be a Tensor')
            if len(gt) != num_frames:
                raise ValueError(f'DMFormerHead: sample {i} has {len(gt)} '
                                 f'GT frames, expected {num_frames}')
            img_h, img_w = data_sample.metainfo['img_shape'][:2]
            valid = gt.valid.to(device=device, dtype=torch.bool)
            factor = torch.tensor([img_w, img_h, img_w, img_h],
                                  dtype=torch.float32,
                                  device=device)
            bbox = bbox_xyxy_to_cxcywh(
                gt.bboxes.to(device=device, dtype=torch.float32) / factor)
            bboxes.append(bbox * valid[:, None])
            mask = gt.masks[:, s // 2::s, s // 2::s].to(device)
            mh, mw = mask.shape[-2:]
            if mh > h or mw > w:
                raise ValueError(
                    f'DMFormerHead: GT masks of sample {i} '
                    f'{tuple(gt.masks.shape[-2:])} are larger than the '
                    f'padded input {(h * s, w * s)}')
            mask = F.pad(mask.float(), (0, w - mw, 0, h - mh))
            masks.append(mask)
            if self.mask_loss_upsample:
                full = gt.masks.to(device=device, dtype=torch.float32)
                fh, fw = full.shape[-2:]
                if fh > h * s or fw > w * s:
                    raise ValueError(
                        f'DMFormerHead: GT masks of sample {i} {(fh, fw)} '
                        f'are larger than the mask predictions upsampled '
                        f'x{s} {(h * s, w * s)}')
                full_masks.append(
                    F.pad(full, (0, w * s - fw, 0, h * s - fh)))
            valids.append(valid)
            if self.num_classes == 1:
                labels.append(torch.zeros((), dtype=torch.long,
                                          device=device))
            else:
                if 'labels' not in gt:
                    raise ValueError('DMFormerHead: gt_instances.labels is '
                                     f'required with num_classes='
                                     f'{self.num_classes} (sample {i})')
                labels.append(gt.labels[0].to(device=device,
                                              dtype=torch.long))
        targets = dict(
            gt_bboxes=torch.stack(bboxes),
            gt_masks=torch.stack(masks),
            gt_valid=torch.stack(valids),
            gt_labels=torch.stack(labels))
        if self.mask_loss_upsample:
            targets['gt_masks_full'] = torch.stack(full_masks)
        return targets

    def loss_by_feat(
            self, head_outs: Dict[str, Tensor],
            batch_data_samples: List[RVOSDataSample]) -> Dict[str, Tensor]:
        """Compute the losses of the last and (optionally) aux layers.

        Args:
            head_outs (dict[str, Tensor]): Output of :meth:`forward`.
            batch_data_samples (list[:obj:`RVOSDataSample`]): Ground truth.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou``,
            ``loss_mask``, ``loss_dice`` of the last decoder layer and
            ``d{l}.loss_*`` of the layers ``l = 0 .. L-2`` when
            ``with_aux_loss``.
        """
        all_cls_scores = head_outs['all_cls_scores']
        all_bbox_preds = head_outs['all_bbox_preds']
        all_mask_preds = head_outs['all_mask_preds']
        num_layers, b, t = all_cls_scores.shape[:3]
        if len(batch_data_samples) != b:
            raise ValueError(f'DMFormerHead: {len(batch_data_samples)} data '
                             f'samples for {b} videos')
        targets = self.get_targets(batch_data_samples,
                                   tuple(all_mask_preds.shape[-2:]), t,
                                   all_cls_scores.device)
        # number of valid frames, averaged over ranks
        num_boxes = reduce_mean(targets['gt_valid'].sum().float())
        num_boxes = num_boxes.clamp(min=1)

        losses = dict()
        layers = range(num_layers) if self.with_aux_loss else \
            [num_layers - 1]
        for lvl in layers:
            layer_losses = self.loss_by_feat_single(
                all_cls_scores[lvl], all_bbox_preds[lvl], all_mask_preds[lvl],
                num_boxes=num_boxes, **targets)
            prefix = '' if lvl == num_layers - 1 else f'd{lvl}.'
            for key, value in layer_losses.items():
                losses[prefix + key] = value
        if head_outs.get('ref_map_logits') is not None:
            losses.update(
                self.loss_ref_map_by_feat(head_outs['ref_map_logits'],
                                          targets['gt_masks']))
        return losses

    def loss_ref_map_by_feat(self, ref_map: Tensor,
                             gt_masks: Tensor) -> Dict[str, Tensor]:
        """Auxiliary referring-map losses (see ``loss_ref_map``).

        Args:
            ref_map (Tensor): Logits at stride 8, (B, T, h8, w8).
            gt_masks (Tensor): Binary GT masks sampled at stride 4,
                (B, T, h4, w4) with h4 = 2 * h8.

        Returns:
            dict[str, Tensor]: ``loss_ref_map`` and, when configured,
            ``loss_ref_map_dice``.
        """
        b, t, h, w = ref_map.shape
        # (B, T, h4, w4) -> (B, T, h8, w8): share of object cells
        target = F.adaptive_avg_pool2d(gt_masks.flatten(0, 1), (h, w))
        target = target.view(b * t, h * w).to(ref_map.dtype)
        logits = ref_map.reshape(b * t, h * w)
        losses = dict(loss_ref_map=self.loss_ref_map(logits, target))
        if self.loss_ref_map_dice is not None:
            losses['loss_ref_map_dice'] = self.loss_ref_map_dice(
                logits, target)
        return losses

    def loss_by_feat_single(self, cls_scores: Tensor, bbox_preds: Tensor,
                            mask_preds: Tensor, gt_bboxes: Tensor,
                            gt_masks: Tensor, gt_valid: Tensor,
                            gt_labels: Tensor,
                            num_boxes: Tensor,
                            gt_masks_full: Optional[Tensor] = None
                            ) -> Dict[str, Tensor]:
        """Losses of one decoder layer.

        Args:
            cls_scores (Tensor): Logits, (B, T, Q, K).
            bbox_preds (Tensor): Normalised cxcywh, (B, T, Q, 4).
            mask_preds (Tensor): Mask logits, (B, T, Q, h, w).
            gt_bboxes (Tensor): Normalised cxcywh, (B, T, 4).
            gt_masks (Tensor): Sampled binary masks, (B, T, h, w).
            gt_valid (Tensor): Bool, (B, T).
            gt_labels (Tensor): Long, (B,).
            num_boxes (Tensor): Normaliser, number of valid frames.
            gt_masks_full (Tensor, optional): Full-resolution binary masks,
                (B, T, h * s, w * s); the mask losses then compare them
                with the logits upsampled x s (``mask_loss_upsample``).

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou``,
            ``loss_mask`` and ``loss_dice``.
        """
        b, t, q, k = cls_scores.shape
        matched = self.assigner(cls_scores.detach(), bbox_preds.detach(),
                                mask_preds.detach(), gt_bboxes, gt_masks,
                                gt_valid, gt_labels)  # (B,)

        # target 1 at (valid frame, matched query, gt class): (B, T, Q, K)
        pos = F.one_hot(matched, q).bool()[:, None, :] & gt_valid[:, :, None]
        cls_targets = pos[..., None] & \
            F.one_hot(gt_labels, k).bool()[:, None, None, :]
        loss_cls = self.loss_cls(
            cls_scores.reshape(-1, k),
            cls_targets.reshape(-1, k).to(cls_scores.dtype),
            avg_factor=num_boxes)

        # matched query in every frame: (B, T, Q, 4) -> (B*T, 4)
        idx = matched.view(b, 1, 1, 1).expand(b, t, 1, 4)
        bboxes = bbox_preds.gather(2, idx).reshape(b * t, 4)
        gt_bboxes = gt_bboxes.reshape(b * t, 4)
        loss_bbox = self.loss_bbox(bboxes, gt_bboxes, avg_factor=num_boxes)
        loss_iou = self.loss_iou(
            bbox_cxcywh_to_xyxy(bboxes),
            bbox_cxcywh_to_xyxy(gt_bboxes),
            avg_factor=num_boxes)

        # matched query's clip masks: (B, T, Q, h, w) -> (B, T*h*w)
        h, w = mask_preds.shape[-2:]
        idx = matched.view(b, 1, 1, 1, 1).expand(b, t, 1, h, w)
        masks = mask_preds.gather(2, idx).squeeze(2)  # (B, T, h, w)
        if gt_masks_full is not None:
            # the logits as the prediction upsamples them, at full size
            h, w = gt_masks_full.shape[-2:]
            masks = F.interpolate(
                masks, size=(h, w), mode='bilinear', align_corners=False)
            gt_masks = gt_masks_full
        masks = masks.reshape(b, t * h * w)
        gt_masks = gt_masks.reshape(b, t * h * w).to(masks.dtype)
        # mean over the clip pixels, summed over videos, / num_boxes
        loss_mask = self.loss_mask(
            masks, gt_masks, avg_factor=num_boxes * (t * h * w))
        loss_dice = self.loss_dice(masks, gt_masks, avg_factor=num_boxes)
        losses = dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_iou=loss_iou,
            loss_mask=loss_mask,
            loss_dice=loss_dice)
        if self.loss_query is not None:
            # (B, T, Q, K) -> (B*T, Q): best class logit of every query
            logits = cls_scores.max(-1)[0].reshape(b * t, q)
            target = matched[:, None].expand(b, t).reshape(b * t)
            weight = gt_valid.reshape(b * t).to(logits.dtype)
            losses['loss_query'] = self.loss_query(
                logits, target, weight, avg_factor=num_boxes)
        return losses

    def predict_by_feat(self,
                        head_outs: Dict[str, Tensor],
                        batch_data_samples: List[RVOSDataSample],
                        rescale: bool = True) -> List[InstanceData]:
        """Pick one query per video and post-process its masks and boxes.

        The query with the highest mean (over frames) sigmoid score of the
        last decoder layer is used in every frame. Its mask logits (stride
        s = ``mask_feat_stride``) reach the output size (``ori_shape`` when
        ``rescale``, else ``img_shape``) as ``test_cfg.mask_upsample`` says,
        with bilinear resizes (``align_corners=False``), and are thresholded
        (sigmoid > ``mask_thr``):

        - ``'two_step'``: upsampled x s to the video's padded input size,
          cropped to ``img_shape`` and resized to the output size (skipped
          when it is ``img_shape``);
        - ``'one_step'`` (the official ``inference_ytvos.py``): the
          ceil(img_h / s) x ceil(img_w / s) logits that cover ``img_shape``
          are resized to the output size directly. On an input whose size
          is a multiple of s (the official unpadded 360 x 640 clips) these
          are exactly the image's logits; otherwise their last row / column
          also covers up to s - 1 pixels beyond the image, which the
          official code stretches over the image as well.

        Its normalised cxcywh boxes become xyxy pixels of the same frame.

        Args:
            head_outs (dict[str, Tensor]): Output of :meth:`forward`.
            batch_data_samples (list[:obj:`RVOSDataSample`]): With the
                ``img_shape`` and ``ori_shape`` meta.
            rescale (bool): Whether to return results at ``ori_shape``
                instead of ``img_shape``. Defaults to True.

        Returns:
            list[:obj:`InstanceData`]: One per video, of length T, with
            ``masks`` (bool (T, H, W)), ``bboxes`` ((T, 4) xyxy pixels) and
            ``scores`` ((T,) per-frame score of the chosen query).
        """
        cls_scores = head_outs['all_cls_scores'][-1]  # (B, T, Q, K)
        bbox_preds = head_outs['all_bbox_preds'][-1]  # (B, T, Q, 4)
        mask_preds = head_outs['all_mask_preds'][-1]  # (B, T, Q, h, w)
        b, t, q = cls_scores.shape[:3]
        h, w = mask_preds.shape[-2:]
        probs = cls_scores.sigmoid().max(-1)[0]  # (B, T, Q)
        query_idx = probs.mean(1).argmax(-1)  # (B,)
        scores = probs.gather(2, query_idx.view(b, 1, 1).expand(b, t, 1))
        scores = scores.squeeze(2)  # (B, T)
        idx = query_idx.view(b, 1, 1, 1).expand(b, t, 1, 4)
        bboxes = bbox_preds.gather(2, idx).squeeze(2)  # (B, T, 4)
        idx = query_idx.view(b, 1, 1, 1, 1).expand(b, t, 1, h, w)
        masks = mask_preds.gather(2, idx).squeeze(2)  # (B, T, h, w)
        s = self.mask_feat_stride
        one_step = self._check_mask_upsample() == 'one_step'
        mask_shapes = head_outs.get('mask_shapes')
        if mask_shapes is None and not one_step:
            # (B, T, h, w) -> (B, T, h*s, w*s), the padded input size
            masks = F.interpolate(
                masks, size=(h * s, w * s), mode='bilinear',
                align_corners=False)

        results = []
        for i, data_sample in enumerate(batch_data_samples):
            img_h, img_w = data_sample.metainfo['img_shape'][:2]
            out_h, out_w = data_sample.metainfo['ori_shape'][:2] \
                if rescale else (img_h, img_w)
            if one_step:
                # the logits covering the image, straight to the output
                mh, mw = math.ceil(img_h / s), math.ceil(img_w / s)
                mask = F.interpolate(
                    masks[i:i + 1, :, :mh, :mw],
                    size=(out_h, out_w),
                    mode='bilinear',
                    align_corners=False)
            elif mask_shapes is None:
                mask = masks[i:i + 1, :, :img_h, :img_w]
            else:
                # upsample the video's own padded size only, so the border
                # rows do not blend with a batch mate's padding
                mh, mw = mask_shapes[i].tolist()
                mask = F.interpolate(
                    masks[i:i + 1, :, :mh, :mw],
                    size=(mh * s, mw * s),
                    mode='bilinear',
                    align_corners=False)[..., :img_h, :img_w]
            if not one_step and (out_h, out_w) != (img_h, img_w):
                mask = F.interpolate(
                    mask,
                    size=(out_h, out_w),
                    mode='bilinear',
                    align_corners=False)
            result = InstanceData()
            probs = mask[0].sigmoid()
            result.masks = probs > self.test_cfg['mask_thr']
            if self.test_cfg.get('return_mask_probs', False):
                # for protocols that merge objects by probability (Ref-DAVIS)
                result.mask_probs = probs
            factor = bboxes.new_tensor([out_w, out_h, out_w, out_h])
            bbox = bbox_cxcywh_to_xyxy(bboxes[i]) * factor
            bbox[:, 0::2] = bbox[:, 0::2].clamp(min=0, max=out_w)
            bbox[:, 1::2] = bbox[:, 1::2].clamp(min=0, max=out_h)
            result.bboxes = bbox
            result.scores = scores[i]
            results.append(result)
        return results
