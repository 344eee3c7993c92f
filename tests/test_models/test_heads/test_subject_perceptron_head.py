# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from dmformer.models.heads import SubjectPerceptronHead


def _logits_from_probs(p):
    """Logits whose softmax(-1)[..., 1] equals ``p``."""
    p = torch.as_tensor(p, dtype=torch.float)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], -1)


def test_subject_head_params_and_forward():
    head = SubjectPerceptronHead()
    assert sum(p.numel() for p in head.parameters()) == 1840898
    small = SubjectPerceptronHead(
        embed_dims=16, num_heads=2, feedforward_channels=32).eval()
    feats = torch.randn(2, 5, 16)
    pad = torch.tensor([[False] * 3 + [True] * 2, [False] * 5])
    logits = small(feats, pad)
    assert logits.shape == (2, 5, 2)
    alone = small(feats[:1, :3], pad[:1, :3])
    assert torch.allclose(logits[0, :3], alone[0], atol=1e-5)


def test_subject_head_select():
    head = SubjectPerceptronHead(16, 2, 32)
    probs = torch.tensor([
        [0.5, 0.2, 0.9, 0.3, 0.9, 0.1, 0.5],
        [0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.5],
        [0.5, 0.1, 0.2, 0.95, 0.5, 0.5, 0.5],
    ])
    pad = torch.tensor([[False] * 7, [False] * 6 + [True],
                        [False] * 5 + [True] * 2])
    spans = torch.tensor([
        [[1, 2], [2, 4], [4, 6]],  # max probs 0.2, 0.9, 0.9 -> tie
        [[1, 3], [3, 5], [0, 0]],  # 0.2, 0.4 -> chunk 1
        [[1, 3], [3, 4], [0, 0]],  # chunk 1 (0.95) is invalid
    ])
    valid = torch.tensor([[True, True, True], [True, True, False],
                          [True, False, False]])
    span = head.select(_logits_from_probs(probs), pad, spans, valid)
    assert span.tolist() == [[2, 4], [3, 5], [1, 3]]
    # no valid chunk -> the whole caption
    span = head.select(
        _logits_from_probs(probs), pad, spans, torch.zeros_like(valid))
    assert span.tolist() == [[0, 7], [0, 6], [0, 5]]
    with pytest.raises(ValueError, match='chunk_spans'):
        head.select(_logits_from_probs(probs), pad, spans[:2], valid[:2])


def test_subject_head_loss():
    head = SubjectPerceptronHead(
        16, 2, 32, loss_subject=dict(type='SubjectTokenLoss', loss_weight=2.0))
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 2, requires_grad=True)
    pad = torch.tensor([[False] * 4, [False] * 4, [False] * 2 + [True] * 2])
    labels = torch.tensor([[0, 1, 1, -100], [-100] * 4, [1, 0, 1, 1]])
    loss = head.loss(logits, pad, labels)['loss_subject']
    ce0 = F.cross_entropy(logits[0, :3], labels[0, :3])
    ce2 = F.cross_entropy(logits[2, :2], labels[2, :2])  # padding ignored
    assert torch.allclose(loss, 2.0 * (ce0 + ce2) / 2)
    loss.backward()
    assert (logits.grad[1] == 0).all() and (logits.grad[0] != 0).any()

    # no label at all: zero loss that still depends on the logits
    logits = torch.randn(2, 3, 2, requires_grad=True)
    loss = head.loss(logits, torch.zeros(2, 3, dtype=torch.bool),
                     torch.full((2, 3), -100))['loss_subject']
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError, match='gt_labels'):
        head.loss(logits, torch.zeros(2, 3, dtype=torch.bool),
                  torch.zeros(2, 4, dtype=torch.long))
