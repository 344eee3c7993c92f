# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Tuple

import torch.nn as nn
from mmdet.models.backbones import SwinTransformer
from torch import Tensor

from dmformer.registry import MODELS


@MODELS.register_module()
class GLIPSwinTransformer(SwinTransformer):
    """Swin Transformer as used by GLIP-T / DMFormer, on mmdet's
    :class:`~mmdet.models.backbones.SwinTransformer`.

    Differences from mmdet's class, all configurable:

    - ``norm_first_output=False`` reproduces GLIP's ``SWINT-FPN-RETINANET``
      variant, whose stride-4 output is not layer-normed (``norm0`` is an
      identity).
    - ``frozen=True`` freezes every parameter (DMFormer trains neither the
      backbone nor the text encoder). ``frozen_eval`` chooses the mode of the
      frozen network during training: ``True`` (default) keeps it in eval
      mode, so drop-path and dropout are off; ``False`` reproduces the
      official code, whose frozen Swin still runs drop-path 0.2 in training.
    - ``lang_fusion`` (optional) builds RMHCA modules (disabled in the
      official code) applied to the visual tokens before given stages; they
      stay trainable when frozen.

    Args:
        norm_first_output (bool): Whether ``norm0`` is a LayerNorm.
            Defaults to False (GLIP-T).
        frozen (bool): Freeze all backbone parameters. Defaults to True.
        frozen_eval (bool): Keep a frozen backbone in eval mode while the
            model trains. Defaults to True.
        lang_fusion (dict, optional): Config of the RMHCA modules, e.g.
            ``dict(type='RMHCA', stages=(2, 3))``: one module before each
            listed stage (0-based), with the stage's input channels.
            Defaults to None (off, as in the released model).
        **kwargs: Arguments of mmdet's SwinTransformer.
    """

    def __init__(self,
                 norm_first_output: bool = False,
                 frozen: bool = True,
                 frozen_eval: bool = True,
                 lang_fusion: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not norm_first_output and 0 in self.out_indices:
            self.norm0 = nn.Identity()
        self.frozen = frozen
        self.frozen_eval = frozen_eval
        if frozen:
            for param in self.parameters():
                param.requires_grad_(False)
        self.lang_fusion = None
        self.lang_fusion_stages: Tuple[int, ...] = ()
        if lang_fusion is not None:
            lang_fusion = dict(lang_fusion)
            stages = tuple(lang_fusion.pop('stages', (2, 3)))
            modules = []
            for stage in stages:
                # the input of stage i has embed_dims * 2**i channels
                in_channels = self.num_features[stage]
                modules.append(
                    MODELS.build(dict(lang_fusion, in_channels=in_channels)))
            self.lang_fusion = nn.ModuleList(modules)
            self.lang_fusion_stages = stages

    def train(self, mode: bool = True) -> 'GLIPSwinTransformer':
        """Set the train mode, keeping a frozen network in eval mode when
        ``frozen_eval`` is True (RMHCA modules follow ``mode``)."""
        keep_eval = mode and self.frozen and self.frozen_eval
        super().train(mode and not keep_eval)
        if keep_eval and self.lang_fusion is not None:
            self.lang_fusion.train(True)
        return self

    def forward(self,
                x: Tensor,
                lang: Optional[dict] = None,
                num_frames: int = 1) -> List[Tensor]:
        """Extract multi-scale features.

        Args:
            x (Tensor): Frames, has shape (bt, 3, H, W).
            lang (dict, optional): Text features for RMHCA, with keys
                ``word_feats`` (b, L, C), ``word_pad_mask`` (b, L) and
                ``text_pos`` (b, L, C). Only needed with ``lang_fusion``.
            num_frames (int): Frames per video, for RMHCA. Defaults to 1.

        Returns:
            list[Tensor]: Features of the stages in ``out_indices``, each of
            shape (bt, C_i, H / s_i, W / s_i).
        """
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)

        outs = []
        for i, stage in enumerate(self.stages):
            if i in self.lang_fusion_stages:
                if lang is None:
                    raise ValueError('lang_fusion is enabled: the backbone '
                                     'needs the text features (lang).')
                module = self.lang_fusion[self.lang_fusion_stages.index(i)]
                x = module(x, lang['word_feats'], lang['word_pad_mask'],
                           lang['text_pos'], num_frames)
            x, hw_shape, out, out_hw_shape = stage(x, hw_shape)
            if i in self.out_indices:
                norm_layer = getattr(self, f'norm{i}')
                out = norm_layer(out)
                # [bt, h*w, c] -> [bt, c, h, w]
                out = out.view(-1, *out_hw_shape,
                               self.num_features[i]).permute(0, 3, 1,
                                                             2).contiguous()
                outs.append(out)
        return outs
