# Copyright (c) OpenMMLab. All rights reserved.
from .bert_layer import BertStyleEncoderLayer
from .cross_modal_fpn import CrossModalFPNDecoder, VisionLanguageBlock
from .decoupled_interaction import (DecoupledInteraction, InteractionBranch,
                                    flatten_encoder_inputs)
from .dynamic_mask_head import DynamicMaskHead
from .feature_resizer import FeatureResizer
from .ms_deform_attn import (DeformableDecoder, DeformableDecoderLayer,
                             DeformableEncoderLayer, MSDeformAttn,
                             multi_scale_deformable_attn_gather)
from .positional_encoding import SinePositionalEncoding1D
from .rmhca import RMHCA
from .vl_fusion import VisionLanguageFusion

__all__ = [
    'BertStyleEncoderLayer', 'FeatureResizer', 'SinePositionalEncoding1D',
    'RMHCA', 'VisionLanguageFusion', 'CrossModalFPNDecoder',
    'VisionLanguageBlock', 'DynamicMaskHead', 'DecoupledInteraction',
    'InteractionBranch', 'flatten_encoder_inputs', 'MSDeformAttn',
    'DeformableEncoderLayer', 'multi_scale_deformable_attn_gather',
    'DeformableDecoder', 'DeformableDecoderLayer'
]
