# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from dmformer.models.losses import SubjectTokenLoss
from dmformer.registry import MODELS


def test_subject_token_loss_is_a_configured_module():
    loss_fn = MODELS.build(dict(type='SubjectTokenLoss', loss_weight=0.5))
    assert isinstance(loss_fn, SubjectTokenLoss)
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 2)
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    labels = torch.tensor([[1, 1, 0, 0, 0], [0, 1, -100, 1, 1]])
    # caption 1: 5 tokens; caption 2: tokens 0 and 1 (2 ignored, 3-4 pad)
    expected = (F.cross_entropy(logits[0], labels[0]) +
                F.cross_entropy(logits[1, :2], labels[1, :2])) / 2
    torch.testing.assert_close(loss_fn(logits, pad, labels), 0.5 * expected)
    with pytest.raises(ValueError, match='gt_labels shape'):
        loss_fn(logits, pad, labels[:, :3])
