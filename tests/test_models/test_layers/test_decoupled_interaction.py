# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from dmformer.models.language_models import BertTextEncoder
from dmformer.models.layers import (DecoupledInteraction, InteractionBranch,
                                    SinePositionalEncoding1D,
                                    flatten_encoder_inputs)
from dmformer.models.utils import masked_mean
from dmformer.registry import MODELS

D = 32
SHAPES = [(8, 8), (4, 4), (2, 2), (1, 1)]
BRANCH = dict(
    num_iters=2,
    encoder_layer_cfg=dict(
        self_attn_cfg=dict(num_heads=4, num_points=2),
        ffn_cfg=dict(feedforward_channels=64, ffn_drop=0.1)),
    text_layer_cfg=dict(num_heads=4, feedforward_channels=64))


def _tiny_neck(**kwargs):
    torch.manual_seed(0)
    cfg = dict(embed_dims=D, context_branch=BRANCH, subject_branch=BRANCH)
    cfg.update(kwargs)
    return DecoupledInteraction(**cfg)


def _visual(num_videos, num_frames, seed, pad_cols=0):
    g = torch.Generator().manual_seed(seed)
    BT = num_videos * num_frames
    feats, masks, pos = [], [], []
    for h, w in SHAPES:
        feats.append(torch.randn(BT, D, h, w, generator=g))
        pos.append(torch.randn(BT, D, h, w, generator=g))
        m = torch.zeros(BT, h, w, dtype=torch.bool)
        cols = (pad_cols * w) // 8
        if cols:
            m[:, :, w - cols:] = True
        masks.append(m)
    return feats, masks, pos


def _cat(a, b):
    return [torch.cat([x, y]) for x, y in zip(a, b)]


def test_param_counts():
    neck = DecoupledInteraction()
    count = sum(p.numel() for p in neck.context_branch.parameters())
    assert count == 6838784
    assert sum(p.numel() for p in neck.parameters()) == 2 * 6838784
    assert neck.context_branch.vision_resizer.fc.out_features == 128
    single = DecoupledInteraction(subject_branch=None)
    assert single.subject_branch is None
    assert single.context_branch.vision_resizer.fc.out_features == 256
    assert MODELS.get('DecoupledInteraction') is DecoupledInteraction
    with pytest.raises(ValueError, match='at least one'):
        DecoupledInteraction(context_branch=None, subject_branch=None)


def test_forward_shapes_and_merge():
    neck = _tiny_neck().eval()
    T, B, L = 2, 2, 5
    feats, masks, pos = _visual(B, T, seed=1, pad_cols=2)
    words = torch.randn(B, L, D)
    pad = torch.tensor([[False] * 3 + [True] * 2, [False] * 5])
    text_pos = SinePositionalEncoding1D(D)(pad)
    sent = torch.randn(B, D)
    span = torch.tensor([[1, 3], [2, 3]])
    captured = {}

    def hook(name):
        def fn(module, args, output):
            captured[name] = output
        return fn

    neck.context_branch.vision_resizer.register_forward_hook(hook('ctx_v'))
    neck.subject_branch.vision_resizer.register_forward_hook(hook('sub_v'))
    neck.subject_branch.text_layers[-1].register_forward_hook(hook('sub_t'))
    out = neck(**flatten_encoder_inputs(feats, masks, pos), word_feats=words,
               word_pad_mask=pad, text_pos=text_pos, sentence_feat=sent,
               subject_span=span, num_frames=T)

    S_hw = sum(h * w for h, w in SHAPES)
    assert out['memory'].shape == (B * T, S_hw, D)
    assert out['memory_pad_mask'].shape == (B * T, S_hw)
    assert out['memory_pad_mask'].dtype == torch.bool
    assert out['spatial_shapes'].tolist() == [list(s) for s in SHAPES]
    assert out['level_start_index'].tolist() == [0, 64, 80, 84]
    assert out['text_embed'].shape == (B, D)
    # padding of 2/8 columns -> valid width ratio 0.75 at every level
    # where it is representable (8, 4 columns), 1 elsewhere
    assert torch.allclose(out['valid_ratios'][0, :, 0],
                          torch.tensor([0.75, 0.75, 1., 1.]))
    assert torch.allclose(out['valid_ratios'][:, :, 1],
                          torch.ones(B * T, 4))
    # context channels first, then subject channels
    assert torch.equal(out['memory'][..., :D // 2], captured['ctx_v'])
    assert torch.equal(out['memory'][..., D // 2:], captured['sub_v'])
    # subject text embed = sentence + 0.5 * masked mean of the span words
    # (the second span has length 1, padded to S = 2)
    branch = neck.subject_branch
    span_pad = torch.tensor([[False, False], [False, True]])
    expected = branch.text_resizer(sent) + 0.5 * masked_mean(
        branch.text_resizer(captured['sub_t']), span_pad)
    assert torch.allclose(out['text_embed'][:, D // 2:], expected,
                          atol=1e-6)


def test_gather_subject():
    neck = _tiny_neck()
    words = torch.arange(2 * 6 * D, dtype=torch.float).view(2, 6, D)
    feats, pad, pos = neck.gather_subject(words, torch.tensor([[1, 3],
                                                               [2, 5]]))
    assert feats.shape == (2, 3, D) and pos.shape == (2, 3, D)
    assert pad.tolist() == [[False, False, True], [False, False, False]]
    assert torch.equal(feats[0, :2], words[0, 1:3])
    assert torch.equal(feats[0, 2], torch.zeros(D))
    assert torch.equal(feats[1], words[1, 2:5])
    assert torch.allclose(pos, SinePositionalEncoding1D(D)(pad))
    with pytest.raises(ValueError, match='non-empty'):
        neck.gather_subject(words, torch.tensor([[1, 1], [2, 5]]))
    with pytest.raises(ValueError, match='non-empty'):
        neck.gather_subject(words, torch.tensor([[1, 7], [2, 5]]))
    with pytest.raises(ValueError, match='subject_span'):
        neck.gather_subject(words, None)


def test_fusion_all_levels_equals_per_level():
    torch.manual_seed(0)
    branch = InteractionBranch(D, D // 2, **BRANCH).eval()
    fusion = branch.vl_fusions[0]
    T = 2
    feats, _, _ = _visual(1, T, seed=3)
    text = torch.randn(1, 4, D)
    pad = torch.tensor([[False, False, True, True]])
    # official: per level, '(b t) c h w -> b (t h w) c'
    per_level = []
    for f in feats:
        x = f.flatten(2).transpose(1, 2)  # [t, hw, c]
        hw = x.shape[1]
        y = fusion(x.reshape(1, T * hw, D), text, pad)
        per_level.append(y.reshape(T, hw, D))
    per_level = torch.cat(per_level, 1)
    flat = torch.cat([f.flatten(2).transpose(1, 2) for f in feats], 1)
    S = flat.shape[1]
    at_once = fusion(flat.reshape(1, T * S, D), text, pad).reshape(T, S, D)
    assert torch.allclose(per_level, at_once, atol=1e-6)


def test_single_branch_and_backward():
    neck = _tiny_neck(subject_branch=None).train()
    T, B, L = 1, 2, 4
    feats, masks, pos = _visual(B, T, seed=2)
    words = torch.randn(B, L, D, requires_grad=True)
    pad = torch.tensor([[False] * 2 + [True] * 2, [False] * 4])
    visual = flatten_encoder_inputs(feats, masks, pos)
    text = dict(word_feats=words, word_pad_mask=pad,
                text_pos=SinePositionalEncoding1D(D)(pad),
                sentence_feat=torch.randn(B, D), subject_span=None)
    out = neck(**visual, **text, num_frames=T)
    assert out['memory'].shape[-1] == D and out['text_embed'].shape == (B, D)
    (out['memory'].sum() + out['text_embed'].sum()).backward()
    assert words.grad is not None and (words.grad[0, :2] != 0).any()
    # padded words never influence anything
    assert (words.grad[0, 2:] == 0).all()
    assert neck.context_branch.level_embed.grad is not None
    with pytest.raises(ValueError, match='num_frames'):
        neck(**visual, **text, num_frames=3)


def test_masking_alone_vs_batch():
    """A caption gives the same text features and neck outputs alone and
    in a batch with a longer caption (eval mode)."""
    torch.manual_seed(0)
    text_encoder = BertTextEncoder(
        bert_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64),
        out_channels=D).eval()
    neck = _tiny_neck().eval()
    pos_enc = SinePositionalEncoding1D(D)
    T = 2
    cap_a = 'a man riding a horse'
    cap_b = "a black-and-white cat sitting next to a woman's bag"
    vis_a = _visual(1, T, seed=5, pad_cols=2)
    vis_b = _visual(1, T, seed=6)

    def run(captions, visual, spans):
        text = text_encoder(captions)
        text_pos = pos_enc(text['word_pad_mask'])
        out = neck(**flatten_encoder_inputs(*visual),
                   word_feats=text['word_feats'],
                   word_pad_mask=text['word_pad_mask'], text_pos=text_pos,
                   sentence_feat=text['sentence_feat'],
                   subject_span=torch.tensor(spans), num_frames=T)
        return text, out

    # subject 'a horse' = tokens [4, 6); in the batch, the subject span of
    # the second caption is longer (7 tokens) so the first one is padded
    text_1, out_1 = run([cap_a], vis_a, [[4, 6]])
    visual = tuple(_cat(a, b) for a, b in zip(vis_a, vis_b))
    text_2, out_2 = run([cap_a, cap_b], visual, [[4, 6], [1, 8]])
    n = text_1['word_feats'].shape[1]
    assert text_2['word_feats'].shape[1] > n
    assert text_2['word_pad_mask'][0, n:].all()
    assert torch.allclose(text_2['word_feats'][0, :n],
                          text_1['word_feats'][0], atol=1e-5)
    assert torch.allclose(text_2['sentence_feat'][0],
                          text_1['sentence_feat'][0], atol=1e-5)
    assert torch.allclose(out_2['memory'][:T], out_1['memory'][0:T],
                          atol=1e-5)
    assert torch.allclose(out_2['text_embed'][0], out_1['text_embed'][0],
                          atol=1e-5)
    assert torch.equal(out_2['valid_ratios'][:T], out_1['valid_ratios'])
