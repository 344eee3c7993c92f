# Copyright (c) OpenMMLab. All rights reserved.
from mmengine.model import BaseModule
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.utils import OptMultiConfig


@MODELS.register_module()
class FeatureResizer(BaseModule):
    """Linear projection + LayerNorm + dropout (ReferFormer/DMFormer).

    Used to project BERT features to the model width and, in every
    interaction branch, to project the branch outputs to their share of the
    memory channels.

    Args:
        in_channels (int): Input feature size.
        out_channels (int): Output feature size.
        dropout (float): Dropout after the norm. Defaults to 0.1.
        do_ln (bool): Whether to apply the LayerNorm. Defaults to True.
        ln_eps (float): LayerNorm epsilon. Defaults to 1e-12.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 dropout: float = 0.1,
                 do_ln: bool = True,
                 ln_eps: float = 1e-12,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.do_ln = do_ln
        self.fc = nn.Linear(in_channels, out_channels, bias=True)
        self.layer_norm = nn.LayerNorm(out_channels, eps=ln_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Resize the last dimension of ``x``.

        Args:
            x (Tensor): (..., in_channels).

        Returns:
            Tensor: (..., out_channels).
        """
        x = self.fc(x)
        if self.do_ln:
            x = self.layer_norm(x)
        return self.dropout(x)
