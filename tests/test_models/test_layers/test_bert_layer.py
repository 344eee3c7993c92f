# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from dmformer.models.layers import BertStyleEncoderLayer


def test_bert_layer_param_count_and_names():
    layer = BertStyleEncoderLayer(256, 8, 3072)
    assert sum(p.numel() for p in layer.parameters()) == 1840384
    keys = set(layer.state_dict())
    assert 'attention.self.query.weight' in keys
    assert 'output.LayerNorm.bias' in keys
    assert layer.output.LayerNorm.eps == 1e-12


def test_bert_layer_matches_hf_and_masks():
    torch.manual_seed(0)
    layer = BertStyleEncoderLayer(32, 4, 64).eval()
    config = BertConfig(
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        attn_implementation='eager')
    ref = BertLayer(config).eval()
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 32)
    pad = torch.tensor([[False] * 3 + [True] * 2, [False] * 5])
    out = layer(x, pad)
    hf_mask = (1.0 - (~pad).float())[:, None, None, :] * \
        torch.finfo(torch.float32).min
    assert torch.allclose(out, ref(x, attention_mask=hf_mask)[0], atol=1e-6)
    # valid tokens do not depend on the padding
    alone = layer(x[:1, :3], torch.zeros(1, 3, dtype=torch.bool))
    assert torch.allclose(out[0, :3], alone[0], atol=1e-5)
    assert torch.allclose(layer(x), layer(x, torch.zeros_like(pad)))
    with pytest.raises(ValueError, match='bool'):
        layer(x, pad.long())


def test_bert_layer_init_and_dropout():
    layer = BertStyleEncoderLayer(64, 4, 256)
    layer.init_weights()
    w = layer.intermediate.dense.weight
    assert abs(w.std().item() - 0.02) < 0.003
    assert (layer.attention.self.query.bias == 0).all()
    default = BertStyleEncoderLayer(64, 4, 256, init_cfg=None)
    default.init_weights()
    # PyTorch default init: uniform(-1/sqrt(64), 1/sqrt(64)) biases
    assert (default.attention.self.query.bias != 0).any()
    x = torch.randn(1, 4, 64)
    layer.train()
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    assert torch.allclose(layer(x), layer(x))
