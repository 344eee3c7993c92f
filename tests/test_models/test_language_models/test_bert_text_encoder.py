# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

import pytest
import torch

from dmformer.models.language_models import BertTextEncoder
from dmformer.models.language_models.bert_text_encoder import \
    default_vocab_file
from dmformer.models.utils import masked_mean

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64)


def _tiny(**kwargs):
    torch.manual_seed(0)
    return BertTextEncoder(bert_config=TINY, out_channels=16, **kwargs)


def test_forward_contract():
    enc = _tiny().eval()
    out = enc(['a man', "the man's dog runs"])
    assert out['word_feats'].shape == (2, 8, 16)
    assert out['sentence_feat'].shape == (2, 16)
    assert out['word_pad_mask'].tolist() == [
        [False] * 4 + [True] * 4, [False] * 8
    ]
    assert out['input_ids'][:, 0].tolist() == [101, 101]  # [CLS]
    assert out['offsets'].dtype == torch.long
    assert out['offsets'][1].tolist() == [[0, 0], [0, 3], [4, 7], [7, 8],
                                          [8, 9], [10, 13], [14, 18],
                                          [0, 0]]
    # sentence = resizer(masked mean of the last BERT layer incl CLS/SEP)
    ids = out['input_ids']
    hidden = enc.bert(
        input_ids=ids,
        attention_mask=(~out['word_pad_mask']).long()).last_hidden_state
    sent = enc.resizer(hidden[0, :4].mean(0))
    assert torch.allclose(out['sentence_feat'][0], sent, atol=1e-5)
    assert torch.allclose(
        out['sentence_feat'],
        enc.resizer(masked_mean(hidden, out['word_pad_mask'])),
        atol=1e-5)
    assert torch.allclose(
        out['word_feats'][1], enc.resizer(hidden[1]), atol=1e-5)


def test_padding_invariance():
    enc = _tiny().eval()
    alone = enc(['a man'])
    batch = enc(['a man', 'a black-and-white cat next to a tall woman'])
    n = alone['word_feats'].shape[1]
    assert batch['word_feats'].shape[1] > n
    assert torch.allclose(
        batch['word_feats'][0, :n], alone['word_feats'][0], atol=1e-5)
    assert torch.allclose(
        batch['sentence_feat'][0], alone['sentence_feat'][0], atol=1e-5)


def test_frozen_modes():
    enc = _tiny()
    assert not any(p.requires_grad for p in enc.bert.parameters())
    assert all(p.requires_grad for p in enc.resizer.parameters())
    enc.train()
    assert not enc.bert.training and enc.resizer.training
    out = enc(['a dog'])
    out['sentence_feat'].sum().backward()
    assert enc.resizer.fc.weight.grad is not None

    enc = _tiny(frozen_eval=False).train()
    assert enc.bert.training
    enc = _tiny(frozen=False).train()
    assert enc.bert.training
    enc(['a dog'])['word_feats'].sum().backward()
    assert enc.bert.embeddings.word_embeddings.weight.grad is not None


def test_encode_sentences_caches_the_frozen_bert():
    enc = _tiny(resizer_dropout=0.).train()
    texts = ['a dog', 'the man on the left', 'a dog']
    full = enc(texts)['sentence_feat']
    feats = enc.encode_sentences(texts)
    torch.testing.assert_close(feats, full, atol=1e-5, rtol=1e-5)
    assert sorted(enc._sentence_cache) == ['a dog', 'the man on the left']
    feats.sum().backward()  # the resizer still learns
    assert enc.resizer.fc.weight.grad is not None
    calls = []
    enc.bert.register_forward_hook(lambda *args: calls.append(1))
    enc.encode_sentences(['a dog'])
    assert not calls  # served from the cache
    # new weights (a checkpoint) drop the cache
    enc.load_state_dict(enc.state_dict())
    assert not enc._sentence_cache
    # a BERT that learns is never cached
    enc = _tiny(frozen=False).train()
    enc.encode_sentences(['a dog'])
    assert not enc._sentence_cache


def test_errors():
    enc = _tiny()
    with pytest.raises(ValueError, match='caption 1'):
        enc(['a dog', '  '])
    with pytest.raises(ValueError, match='list of str'):
        enc('a dog')
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        _tiny(vocab_file='/nonexistent/nope.txt')
    with pytest.raises(FileNotFoundError, match='config.json'):
        BertTextEncoder(pretrained_path='/nonexistent_dir')
    with pytest.raises(ValueError, match='vocab_size'):
        BertTextEncoder(bert_config=dict(TINY, vocab_size=100))
    with pytest.raises(ValueError, match='max_length'):
        _tiny(max_length=1024)


def test_pretrained_init_cfg(tmp_path):
    src = _tiny()
    ckpt = osp.join(tmp_path, 'text.pth')
    torch.save(dict(state_dict=src.state_dict()), ckpt)
    torch.manual_seed(1)
    dst = BertTextEncoder(
        bert_config=TINY,
        out_channels=16,
        init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    key = 'bert.encoder.layer.0.attention.self.query.weight'
    assert not torch.equal(dst.state_dict()[key], src.state_dict()[key])
    dst.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_local_hf_folder():
    folder = osp.dirname(default_vocab_file())
    if not osp.isfile(osp.join(folder, 'model.safetensors')):
        pytest.skip('MiniLM weights not shipped')
    from safetensors.torch import load_file
    enc = BertTextEncoder(pretrained_path=folder, out_channels=16)
    assert enc.bert.config.hidden_size == 384
    assert enc.resizer.fc.in_features == 384
    weights = load_file(osp.join(folder, 'model.safetensors'))
    key = 'encoder.layer.5.output.dense.weight'
    assert torch.equal(enc.bert.state_dict()[key], weights[key])
    # mmengine init_weights must not re-initialise the loaded BERT
    enc.init_weights()
    assert torch.equal(enc.bert.state_dict()[key], weights[key])
    out = enc.eval()(['a person riding a bike'])
    assert out['word_feats'].shape == (1, 7, 16)
