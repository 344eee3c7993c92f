# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from dmformer.models.layers import CrossModalFPNDecoder, VisionLanguageBlock
from dmformer.registry import MODELS


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_param_counts_default():
    decoder = MODELS.build(dict(type='CrossModalFPNDecoder'))
    assert _num_params(decoder) == 9489664
    assert _num_params(decoder.vl_blocks[0]) == 1578752
    assert sum(_num_params(m) for m in decoder.lateral_convs) == 223232
    assert sum(_num_params(m) for m in decoder.output_convs) == 2361344
    assert _num_params(decoder.mask_features) == 590080
    # no conv bias with a norm, GroupNorm(8)
    assert decoder.lateral_convs[0].conv.bias is None
    assert decoder.output_convs[0].gn.num_groups == 8
    assert [blk.sr_ratio for blk in decoder.vl_blocks] == [8, 4, 2, 1]


def _block_inputs(b=2, t=2, h=4, w=4, c=16, num_words=5):
    torch.manual_seed(0)
    query = torch.randn(b, t * h * w, c)
    pos = torch.randn(b, t * h * w, c)
    pad = torch.zeros(b, t, h, w, dtype=torch.bool)
    pad[1, :, :, -1] = True  # last column of video 1 is padding
    words = torch.randn(b, num_words, c)
    text_pos = torch.randn(b, num_words, c)
    word_pad = torch.zeros(b, num_words, dtype=torch.bool)
    word_pad[0, -2:] = True
    return query, pos, pad.view(b, -1), words, text_pos, word_pad


def _run_block(block, query, pos, pad, words, text_pos, word_pad, t=2):
    return block(query, pos, pad, t, (4, 4), words, text_pos, word_pad)


def test_vision_language_block_masks_and_mixing():
    block = VisionLanguageBlock(
        embed_dims=16, num_heads=4, feedforward_channels=32, sr_ratio=1)
    block.init_weights()
    block.eval()
    query, pos, pad, words, text_pos, word_pad = _block_inputs()
    with torch.no_grad():
        out = _run_block(block, query, pos, pad, words, text_pos, word_pad)
        assert out.shape == query.shape
        # padded words do not matter
        words2 = words.clone()
        words2[0, -2:] += 5. * torch.randn(2, 16)
        out2 = _run_block(block, query, pos, pad, words2, text_pos, word_pad)
        torch.testing.assert_close(out, out2)
        # padded visual tokens only change their own outputs
        query3 = query.clone()
        query3[1, pad[1]] += 5. * torch.randn(8, 16)
        out3 = _run_block(block, query3, pos, pad, words, text_pos, word_pad)
        torch.testing.assert_close(out3[1, ~pad[1]], out[1, ~pad[1]])
        torch.testing.assert_close(out3[0], out[0])
        # spatio-temporal attention: frame 1 influences frame 0 of the
        # same video, never the other video
        query4 = query.clone()
        query4[0, 16:] += torch.randn(16, 16)
        out4 = _run_block(block, query4, pos, pad, words, text_pos, word_pad)
        assert not torch.allclose(out4[0, :16], out[0, :16])
        torch.testing.assert_close(out4[1], out[1])


def test_vision_language_block_spatial_reduction():
    block = VisionLanguageBlock(
        embed_dims=16, num_heads=4, feedforward_channels=32, sr_ratio=2)
    block.init_weights()
    block.eval()
    query, pos, pad, words, text_pos, word_pad = _block_inputs()
    pad = torch.zeros_like(pad)
    with torch.no_grad():
        out = _run_block(block, query, pos, pad, words, text_pos, word_pad)
        # nearest /2 keeps rows/cols 0 and 2: token (y=1, x=1) of frame 0
        # is never a key/value, so it only changes its own output
        query2 = query.clone()
        query2[0, 1 * 4 + 1] += 3. * torch.randn(16)
        out2 = _run_block(block, query2, pos, pad, words, text_pos, word_pad)
        changed = (out2 - out).abs().amax(-1) > 1e-5
        expected = torch.zeros_like(changed)
        expected[0, 5] = True
        assert torch.equal(changed, expected)
        # token (0, 0) of frame 0 is a key: everything in the video changes
        query3 = query.clone()
        query3[0, 0] += 3. * torch.randn(16)
        out3 = _run_block(block, query3, pos, pad, words, text_pos, word_pad)
        assert ((out3[0] - out[0]).abs().amax(-1) > 1e-5).all()
        torch.testing.assert_close(out3[1], out[1])


def test_cross_modal_fpn_forward():
    decoder = CrossModalFPNDecoder(
        in_channels=(8, 16, 16, 16),
        conv_dim=16,
        mask_dim=24,
        num_heads=4,
        feedforward_channels=32)
    decoder.init_weights()
    assert torch.all(decoder.mask_features.bias == 0)
    b, t, c = 2, 2, 16
    sizes = [(16, 16), (8, 8), (4, 4), (2, 2)]
    feats = [torch.randn(b * t, 8 if i == 0 else c, h, w)
             for i, (h, w) in enumerate(sizes)]
    masks = [torch.zeros(b * t, h, w, dtype=torch.bool) for h, w in sizes]
    pos = [torch.randn(b * t, c, h, w) for h, w in sizes]
    words = torch.randn(b, 3, c)
    word_pad = torch.tensor([[False, False, True], [False, False, False]])
    text_pos = torch.randn(b, 3, c)
    out = decoder(feats, masks, pos, words, word_pad, text_pos, t)
    assert out.shape == (b * t, 24, 16, 16)
    out.sum().backward()
    for name, p in decoder.named_parameters():
        assert p.grad is not None, name
    with pytest.raises(ValueError, match='levels'):
        decoder(feats[:3], masks, pos, words, word_pad, text_pos, t)
    with pytest.raises(ValueError, match='num_frames'):
        decoder(feats, masks, pos, words, word_pad, text_pos, 3)


def _referformer_block_forward(block, tgt, memory, t, h, w, tgt_pad,
                               mem_pad, pos, query_pos):
    """Literal port of ReferFormer's ``VisionLanguageBlock.forward_post``
    (sequence-first tensors) using the weights of ``block``."""

    def seq_to_img(x, hh, ww):
        # (t*h*w, b, c) -> (b*t, c, h, w)
        b = x.size(1)
        return x.view(t, hh, ww, b, -1).permute(3, 0, 4, 1, 2).reshape(
            b * t, -1, hh, ww)

    def img_to_seq(x, b):
        # (b*t, c, h, w) -> (t*h*w, b, c)
        _, c, hh, ww = x.shape
        return x.view(b, t, c, hh, ww).permute(1, 3, 4, 0, 2).reshape(
            t * hh * ww, b, c)

    b = tgt.size(1)
    q = k = tgt + query_pos
    new_h, new_w = int(h / block.sr_ratio), int(w / block.sr_ratio)
    q = img_to_seq(
        F.interpolate(seq_to_img(q, h, w), size=(new_h, new_w)), b)
    k = img_to_seq(
        F.interpolate(seq_to_img(k, h, w), size=(new_h, new_w)), b)
    v = img_to_seq(
        F.interpolate(seq_to_img(tgt, h, w), size=(new_h, new_w)), b)
    mask = tgt_pad.reshape(b * t, h, w)
    mask = F.interpolate(
        mask[None].float(), size=(new_h, new_w), mode='nearest').bool()[0]
    mask = mask.reshape(b, t, new_h, new_w).flatten(1)
    attn = block.self_attn
    tgt2 = F.multi_head_attention_forward(
        q, k, v, attn.embed_dim, attn.num_heads, attn.in_proj_weight,
        attn.in_proj_bias, None, None, False, 0., attn.out_proj.weight,
        attn.out_proj.bias, training=False, key_padding_mask=mask)[0]
    tgt2 = F.interpolate(
        seq_to_img(tgt2, new_h, new_w), size=(h, w), mode='bilinear',
        align_corners=False)
    tgt = block.norms[0](tgt + img_to_seq(tgt2, b))
    cross = block.cross_attn.attn  # the wrapped nn.MultiheadAttention
    tgt2 = cross(tgt + query_pos, memory + pos, memory,
                 key_padding_mask=mem_pad)[0]
    tgt = block.norms[1](tgt + tgt2)
    linear1, linear2 = block.ffn.layers[0][0], block.ffn.layers[1]
    tgt2 = linear2(torch.relu(linear1(tgt)))
    return block.norms[2](tgt + tgt2)


def test_vision_language_block_matches_referformer():
    block = VisionLanguageBlock(
        embed_dims=16, num_heads=4, feedforward_channels=32, sr_ratio=2)
    block.init_weights()
    block.eval()
    query, pos, pad, words, text_pos, word_pad = _block_inputs()
    with torch.no_grad():
        out = _run_block(block, query, pos, pad, words, text_pos, word_pad)
        expected = _referformer_block_forward(
            block, query.transpose(0, 1), words.transpose(0, 1), 2, 4, 4,
            pad, word_pad, text_pos.transpose(0, 1), pos.transpose(0, 1))
    torch.testing.assert_close(out, expected.transpose(0, 1), rtol=1e-5,
                               atol=1e-5)


def test_vision_language_block_token_chunks():
    """At inference the token-wise part runs in chunks (here 3 tokens of
    each of the 2 videos, the last chunk 2): the same outputs as in one
    piece (with gradients) and as ReferFormer's block."""
    block = VisionLanguageBlock(
        embed_dims=16,
        num_heads=4,
        feedforward_channels=32,
        sr_ratio=2,
        chunk_size=6)
    block.init_weights()
    block.double().eval()
    inputs = [x.double() if x.is_floating_point() else x
              for x in _block_inputs()]
    query, pos, pad, words, text_pos, word_pad = inputs
    calls = []
    block.ffn.register_forward_hook(
        lambda m, args, out: calls.append(tuple(args[0].shape)))
    with torch.no_grad():
        out = _run_block(block, *inputs)
    assert calls == [(2, 3, 16)] * 10 + [(2, 2, 16)]
    whole = _run_block(block, *inputs)  # gradients: one piece
    assert calls[-1] == (2, 32, 16)
    torch.testing.assert_close(out, whole.detach(), rtol=0, atol=1e-12)
    expected = _referformer_block_forward(
        block, query.transpose(0, 1), words.transpose(0, 1), 2, 4, 4, pad,
        word_pad, text_pos.transpose(0, 1), pos.transpose(0, 1))
    torch.testing.assert_close(out, expected.transpose(0, 1), rtol=0,
                               atol=1e-12)
    with pytest.raises(ValueError, match='chunk_size must be positive'):
        VisionLanguageBlock(embed_dims=16, num_heads=4, chunk_size=0)


def test_cross_modal_fpn_layouts_inference_only():
    """Channels-last lateral inputs at inference only: with gradients (as
    in training) the inputs keep their layout, and so the float rounding
    of the results; both give the same outputs."""
    decoder = CrossModalFPNDecoder(
        in_channels=(8, 16, 16, 16),
        conv_dim=16,
        mask_dim=24,
        num_heads=4,
        feedforward_channels=32)
    decoder.init_weights()
    decoder.double().eval()
    b, t, c = 1, 2, 16
    sizes = [(16, 16), (8, 8), (4, 4), (2, 2)]
    gen = torch.Generator().manual_seed(3)
    feats = [
        torch.randn(b * t, 8 if i == 0 else c, h, w, generator=gen,
                    dtype=torch.float64) for i, (h, w) in enumerate(sizes)
    ]
    masks = [torch.zeros(b * t, h, w, dtype=torch.bool) for h, w in sizes]
    pos = [torch.randn(b * t, c, h, w, generator=gen, dtype=torch.float64)
           for h, w in sizes]
    words = torch.randn(b, 3, c, generator=gen, dtype=torch.float64)
    text_pos = torch.randn(b, 3, c, generator=gen, dtype=torch.float64)
    word_pad = torch.zeros(b, 3, dtype=torch.bool)
    layouts = []
    for conv in decoder.lateral_convs:
        conv.register_forward_pre_hook(lambda m, args: layouts.append(
            args[0].is_contiguous(memory_format=torch.channels_last)))
    args = (feats, masks, pos, words, word_pad, text_pos, t)
    with_grad = decoder(*args)
    assert layouts == [False] * 4
    with torch.no_grad():
        inferred = decoder(*args)
    assert layouts[4:] == [True] * 4
    torch.testing.assert_close(inferred, with_grad.detach(), rtol=0,
                               atol=1e-12)
