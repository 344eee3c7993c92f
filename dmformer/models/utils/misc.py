# Copyright (c) OpenMMLab. All rights reserved.
from typing import List

import torch
from torch import Tensor


def masked_mean(x: Tensor, pad_mask: Tensor, dim: int = 1) -> Tensor:
    """Mean of ``x`` over ``dim`` that ignores padded positions.

    This is the masked average used for the sentence feature and for the
    branch text embeddings (the official code averages padded word
    positions too when the batch holds several captions).

    Args:
        x (Tensor): Features, e.g. (B, N, C).
        pad_mask (Tensor): Bool padding mask (True = padding) whose shape is
            the leading ``dim + 1`` dimensions of ``x``, e.g. (B, N).
        dim (int): The dimension to reduce. Defaults to 1.

    Returns:
        Tensor: ``x`` averaged over the valid positions of ``dim``, e.g.
        (B, C). A row without any valid position gives zeros.
    """
    if pad_mask.dtype != torch.bool:
        raise ValueError(
            f'pad_mask must be a bool tensor, got {pad_mask.dtype}')
    if pad_mask.shape != x.shape[:pad_mask.dim()]:
        raise ValueError(f'pad_mask shape {tuple(pad_mask.shape)} does not '
                         f'match x shape {tuple(x.shape)}')
    valid = (~pad_mask).to(x.dtype)
    # [B, N] -> [B, N, 1, ...] to broadcast over the feature dims
    valid = valid.reshape(valid.shape + (1, ) * (x.dim() - valid.dim()))
    total = (x * valid).sum(dim)
    count = valid.sum(dim).clamp(min=1)
    return total / count


def get_valid_ratio(mask: Tensor) -> Tensor:
    """Valid (non-padded) width/height ratio of a padded feature map.

    Same maths as ``mmdet.models.detectors.DeformableDETR.get_valid_ratio``.

    Args:
        mask (Tensor): Bool padding mask (True = padding), (N, H, W).

    Returns:
        Tensor: (N, 2) float ratios in the order (w, h).
    """
    _, H, W = mask.shape
    valid_H = torch.sum(~mask[:, :, 0], 1)
    valid_W = torch.sum(~mask[:, 0, :], 1)
    valid_ratio_h = valid_H.float() / H
    valid_ratio_w = valid_W.float() / W
    return torch.stack([valid_ratio_w, valid_ratio_h], -1)


def flatten_mlvl(mlvl_tensors: List[Tensor]) -> Tensor:
    """Flatten and concatenate multi-level maps along the token axis.

    Args:
        mlvl_tensors (list[Tensor]): Maps of shape (N, C, h_l, w_l), or
            padding masks of shape (N, h_l, w_l).

    Returns:
        Tensor: (N, sum_l h_l*w_l, C) for maps, (N, sum_l h_l*w_l) for
        masks.
    """
    flat = []
    for t in mlvl_tensors:
        if t.dim() == 4:
            # [N, C, h, w] -> [N, h*w, C]
            flat.append(t.flatten(2).transpose(1, 2))
        elif t.dim() == 3:
            # [N, h, w] -> [N, h*w]
            flat.append(t.flatten(1))
        else:
            raise ValueError('expected 4-D maps or 3-D masks, got a '
                             f'{t.dim()}-D tensor')
    return torch.cat(flat, 1)
