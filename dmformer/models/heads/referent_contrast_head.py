# Copyright (c) OpenMMLab. All rights reserved.
import math
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample
from dmformer.utils import ConfigType, OptMultiConfig


def _mlp(in_dims: int, embed_dims: int) -> nn.Sequential:
    """Linear - ReLU - Linear."""
    return nn.Sequential(
        nn.Linear(in_dims, embed_dims), nn.ReLU(inplace=True),
        nn.Linear(embed_dims, embed_dims))


@MODELS.register_module()
class ReferentContrastHead(BaseModule):
    """Training-only object-expression contrast: which object of the clip
    does each expression of its video describe?

    A video of a referring dataset comes with several expressions, each
    naming one of its objects, and the annotation maps show every object.
    For every clip this head embeds each object visible in it and each
    expression of the video, and trains the expression to pick its referent
    among the clip's objects (a cross-entropy over the scaled cosine
    similarities, as CLIP / GLIP region-word alignment). The detector's own
    losses see one expression per clip; this one sees all of them, on the
    text-free visual features, so the backbone learns the attributes that
    tell the objects of a clip apart (shape, size, texture, colour) from
    every sentence of the video. It adds no module to inference.

    - Object embedding: the first ``num_levels`` projected visual levels,
      upsampled to the first one and concatenated, averaged over the
      object's pixels in all frames of the clip (each pixel weighted by the
      share of the feature cell it covers), then an MLP.
    - Expression embedding: the text encoder's sentence feature, then an
      MLP.

    Expressions whose referent is not visible in the clip, and clips with
    fewer than two visible objects, add nothing.

    Args:
        in_channels (int): Channels of every visual level (the input
            projection's ``out_channels``).
        text_channels (int): Channels of the sentence features.
        embed_dims (int): Width of the joint embedding. Defaults to 128.
        num_levels (int): Visual levels pooled. Defaults to 3.
        feat_stride (int): Stride of the first visual level in input
            pixels. Defaults to 8.
        temperature (float): Initial softmax temperature; the logit scale
            1 / temperature is learnt (capped at 100). Defaults to 0.07.
        loss_referent (dict): Config of the cross-entropy over the objects.
            Defaults to mmdet ``CrossEntropyLoss`` with weight 1.0.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    #: logit of a padded (absent) object slot
    PAD_LOGIT = -1e4

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 embed_dims: int = 128,
                 num_levels: int = 3,
                 feat_stride: int = 8,
                 temperature: float = 0.07,
                 loss_referent: ConfigType = dict(
                     type='mmdet.CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_levels < 1 or feat_stride < 1 or temperature <= 0:
            raise ValueError('ReferentContrastHead: num_levels and '
                             'feat_stride must be >= 1 and temperature > 0')
        self.num_levels = num_levels
        self.feat_stride = feat_stride
        self.visual_proj = _mlp(in_channels * num_levels, embed_dims)
        self.text_proj = _mlp(text_channels, embed_dims)
        self.logit_scale = nn.Parameter(
            torch.tensor(math.log(1. / temperature)))
        self.loss_referent = MODELS.build(loss_referent)

    def pool_objects(self, mlvl_feats: Sequence[Tensor], id_maps: Tensor,
                     obj_ids: Tensor) -> Tensor:
        """Average the visual features of a clip over each object.

        Args:
            mlvl_feats (Sequence[Tensor]): The clip's levels, (T, C, h_l,
                w_l), the first at ``feat_stride`` of the padded input.
            id_maps (Tensor): Object ids per input pixel, (T, H, W), H <=
                h_0 * feat_stride (the unpadded part).
            obj_ids (Tensor): Long (K,), ids present in ``id_maps``.

        Returns:
            Tensor: (K, C * num_levels) pooled features.
        """
        h, w = mlvl_feats[0].shape[-2:]
        feats = [mlvl_feats[0]] + [
            F.interpolate(f, size=(h, w), mode='bilinear', align_corners=False)
            for f in mlvl_feats[1:self.num_levels]
        ]
        feats = torch.cat(feats, 1)  # (T, C*L, h, w)
        s = self.feat_stride
        # (T, H, W) -> (T, K, H, W) object masks, padded to the feature grid
        masks = (id_maps[:, None] == obj_ids[None, :, None, None]).to(
            feats.dtype)
        masks = F.pad(masks, (0, w * s - masks.shape[-1], 0,
                              h * s - masks.shape[-2]))
        # share of every feature cell covered by the object: (T, K, h, w)
        weights = F.avg_pool2d(masks, s)
        pooled = torch.einsum('tkhw,tchw->kc', weights, feats)
        return pooled / weights.sum((0, 2, 3))[:, None].clamp(min=1e-6)

    def loss(self, mlvl_feats: Sequence[Tensor], sentence_feats: Tensor,
             data_samples: List[RVOSDataSample]) -> Dict[str, Tensor]:
        """The object-expression cross-entropy of a batch of clips.

        Args:
            mlvl_feats (Sequence[Tensor]): Visual levels, (B*T, C, h_l,
                w_l) in video-major order.
            sentence_feats (Tensor): Sentence features of the expressions
                of every sample's ``video_expressions``, concatenated in
                sample order, (N, text_channels).
            data_samples (list[:obj:`RVOSDataSample`]): B samples with
                ``gt_instances.id_maps`` and ``video_expressions`` (list of
                ``{"text", "obj_id"}``) in their metainfo.

        Returns:
            dict[str, Tensor]: ``loss_referent`` (zero, with gradients,
            when no clip has two visible objects) and ``referent_acc`` (the
            share of expressions whose best object is their referent;
            reporting only).
        """
        for i, sample in enumerate(data_samples):
            if sample.metainfo.get('video_expressions') is None or \
                    'id_maps' not in sample.gt_instances:
                raise ValueError(
                    'ReferentContrastHead: sample '
                    f'{sample.metainfo.get("video_id", i)!r} lacks '
                    '"video_expressions" or gt_instances.id_maps (set '
                    'with_video_expressions=True on the dataset and '
                    'LoadRVOSAnnotations(with_seg_map=True))')
        num_exps = sum(
            len(s.metainfo['video_expressions']) for s in data_samples)
        if num_exps != len(sentence_feats):
            raise ValueError(
                f'ReferentContrastHead: {len(sentence_feats)} sentence '
                f'features for {num_exps} video expressions')
        b = len(data_samples)
        t = mlvl_feats[0].shape[0] // b
        text_embeds = F.normalize(self.text_proj(sentence_feats), dim=-1)
        scale = self.logit_scale.exp().clamp(max=100.)
        logits, targets = [], []
        start = 0
        for i, sample in enumerate(data_samples):
            expressions = sample.metainfo['video_expressions']
            exp_embeds = text_embeds[start:start + len(expressions)]
            start += len(expressions)
            id_maps = sample.gt_instances.id_maps.to(
                mlvl_feats[0].device).long()
            obj_ids = id_maps.unique()
            obj_ids = obj_ids[obj_ids > 0]
            if len(obj_ids) < 2:
                continue
            # object id -> its slot among the clip's objects
            index = {v: k for k, v in enumerate(obj_ids.tolist())}
            rows = [j for j, exp in enumerate(expressions)
                    if int(exp['obj_id']) in index]
            if not rows:
                continue
            pooled = self.pool_objects(
                [f[i * t:(i + 1) * t] for f in mlvl_feats], id_maps, obj_ids)
            obj_embeds = F.normalize(self.visual_proj(pooled), dim=-1)
            logits.append(scale * exp_embeds[rows] @ obj_embeds.t())
            targets += [index[int(expressions[j]['obj_id'])] for j in rows]
        if not logits:
            zero = text_embeds.sum() * 0. + self.logit_scale * 0.
            return dict(loss_referent=zero, referent_acc=zero.detach())
        num_objs = max(x.shape[1] for x in logits)
        # (N_i, K_i) -> (N, K_max), absent slots never chosen
        logits = torch.cat([
            F.pad(x, (0, num_objs - x.shape[1]), value=self.PAD_LOGIT)
            for x in logits
        ])
        targets = logits.new_tensor(targets, dtype=torch.long)
        acc = (logits.argmax(1) == targets).float().mean()
        return dict(
            loss_referent=self.loss_referent(logits, targets),
            referent_acc=acc.detach())
