# Copyright (c) OpenMMLab. All rights reserved.
import torch.nn.functional as F
from torch import Tensor, nn

from dmformer.registry import MODELS


@MODELS.register_module()
class SubjectTokenLoss(nn.Module):
    """Token cross-entropy of the subject perceptron.

    Every token of a caption is classified as in / not in the subject
    phrase. Per caption, the cross-entropy is averaged over its labelled
    tokens; the loss is the mean over the captions that have labels, times
    ``loss_weight``. (The official code sums the per-caption losses over
    the batch, which scales the loss with the batch size.) When no caption
    of the batch has a label the loss is a zero that still depends on the
    logits, so distributed training sees every parameter used.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 2.0.
    """

    def __init__(self, loss_weight: float = 2.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, logits: Tensor, word_pad_mask: Tensor,
                gt_labels: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            logits (Tensor): (B, L, 2) token logits; class 1 = "in the
                subject".
            word_pad_mask (Tensor): Bool (B, L), True = padding (padding
                tokens are ignored whatever their label).
            gt_labels (Tensor): Long (B, L) in {0, 1, -100}; -100 =
                ignored.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if gt_labels.shape != logits.shape[:2]:
            raise ValueError(f'gt_labels shape {tuple(gt_labels.shape)} does '
                             f'not match logits {tuple(logits.shape)}')
        labels = gt_labels.masked_fill(word_pad_mask, -100)
        ce = F.cross_entropy(
            logits.float().flatten(0, 1),
            labels.flatten(),
            ignore_index=-100,
            reduction='none').view_as(labels)
        num_tokens = (labels != -100).sum(-1)
        per_caption = ce.sum(-1) / num_tokens.clamp(min=1)
        has_label = (num_tokens > 0).to(per_caption.dtype)
        loss = (per_caption * has_label).sum() / has_label.sum().clamp(min=1)
        # a (zero) dependency on the logits when no caption has a label
        loss = loss + logits.sum() * 0.
        return loss * self.loss_weight
