# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.utils import OptMultiConfig
from .vl_fusion import VisionLanguageFusion


@MODELS.register_module()
class RMHCA(BaseModule):
    """Residual multi-head cross-modal attention (optional).

    Linear(C -> D) -> :class:`VisionLanguageFusion` (all frames of a video
    as one query sequence) -> Linear(D -> C) -> residual add. Intended to be
    inserted before Swin stages 3 and 4 (``RMHCA(384)``, ``RMHCA(768)``);
    inactive in the released DMFormer code, hence off by default in the
    configs.

    Args:
        in_channels (int): Channels C of the visual tokens.
        embed_dims (int): Width D of the text features. Defaults to 256.
        num_heads (int): Attention heads. Defaults to 8.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_proj = nn.Linear(in_channels, embed_dims)
        self.fusion = VisionLanguageFusion(embed_dims, num_heads)
        self.out_proj = nn.Linear(embed_dims, in_channels)

    def forward(self,
                x: Tensor,
                text: Tensor,
                text_pad_mask: Optional[Tensor],
                text_pos: Optional[Tensor],
                num_frames: int) -> Tensor:
        """Fuse the words into the visual tokens of every frame.

        Args:
            x (Tensor): Visual tokens (BT, N, C), frames video-major.
            text (Tensor): Words (B, L, D).
            text_pad_mask (Tensor, optional): Bool (B, L), True = padding.
            text_pos (Tensor, optional): Word positions (B, L, D).
            num_frames (int): T, frames per video.

        Returns:
            Tensor: (BT, N, C).
        """
        BT, N, C = x.shape
        if BT % num_frames != 0 or BT // num_frames != text.shape[0]:
            raise ValueError(f'{BT} frames do not match {text.shape[0]} '
                             f'captions x num_frames={num_frames}')
        # [(b t), n, c] -> [b, (t n), c]
        y = self.in_proj(x).reshape(BT // num_frames, num_frames * N, -1)
        y = self.fusion(y, text, text_pad_mask, text_pos)
        # [b, (t n), d] -> [(b t), n, c]
        y = self.out_proj(y).reshape(BT, N, C)
        return x + y
