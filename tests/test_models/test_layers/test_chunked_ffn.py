# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
from mmcv.cnn.bricks.transformer import FFN

from dmformer.models.layers import ChunkedFFN


def _pair(**kwargs):
    """An mmcv FFN and a ChunkedFFN with the same weights, in float64."""
    torch.manual_seed(0)
    ref = FFN(embed_dims=8, feedforward_channels=32, **kwargs)
    ours = ChunkedFFN(embed_dims=8, feedforward_channels=32, chunk_size=5,
                      **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ref.double().eval(), ours.double().eval()


@pytest.mark.parametrize('add_identity', [True, False])
@pytest.mark.parametrize('with_identity', [True, False])
def test_chunked_ffn_equals_mmcv_ffn(add_identity, with_identity):
    ref, ours = _pair(add_identity=add_identity, ffn_drop=0.1)
    gen = torch.Generator().manual_seed(1)
    # 2 x 13 = 26 tokens: five full chunks of 5 and a last one of 1
    x = torch.randn(2, 13, 8, generator=gen, dtype=torch.float64)
    identity = torch.randn(2, 13, 8, generator=gen, dtype=torch.float64) \
        if with_identity else None
    calls = []
    ours.layers.register_forward_hook(
        lambda m, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        expected = ref(x, identity)
        out = ours(x, identity)
    assert calls == [5, 5, 5, 5, 5, 1]
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-14)


def test_chunked_ffn_runs_whole_when_training_or_grad():
    ref, ours = _pair()
    x = torch.randn(26, 8, dtype=torch.float64, requires_grad=True)
    calls = []
    ours.layers.register_forward_hook(
        lambda m, args, out: calls.append(args[0].shape[0]))
    out = ours(x)  # gradient needed: mmcv's forward, one piece
    out.sum().backward()
    assert calls == [26] and x.grad is not None
    torch.testing.assert_close(out, ref(x), rtol=0, atol=0)
    ours.train()
    with torch.no_grad():
        ours(x)  # training mode: dropout, so no chunks either
    assert calls == [26, 26]
    ours.eval()
    with torch.no_grad():
        ours(x[:5])  # at most chunk_size tokens: one piece
    assert calls == [26, 26, 5]


def test_chunked_ffn_keeps_state_dict_keys():
    ref, ours = _pair()
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_chunked_ffn_rejects_bad_chunk_size():
    with pytest.raises(ValueError, match='chunk_size must be positive'):
        ChunkedFFN(embed_dims=8, feedforward_channels=32, chunk_size=0)
