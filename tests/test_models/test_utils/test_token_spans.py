# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
from transformers import BertTokenizerFast

from dmformer.models.language_models.bert_text_encoder import \
    default_vocab_file
from dmformer.models.utils import (char_span_to_token_labels,
                                   char_spans_to_token_spans,
                                   token_span_to_char_span)
from dmformer.utils import extract_noun_chunks, get_spacy_model


@pytest.fixture(scope='module')
def tokenizer():
    return BertTokenizerFast(
        vocab_file=default_vocab_file(), do_lower_case=True)


def _encode(tokenizer, texts):
    enc = tokenizer(
        texts,
        padding='longest',
        return_offsets_mapping=True,
        return_tensors='pt')
    return enc, enc['offset_mapping'].long(), ~enc['attention_mask'].bool()


def test_possessive_and_hyphen_spans(tokenizer):
    texts = ["the man's dog", 'a black-and-white cat']
    enc, offsets, pad = _encode(tokenizer, texts)
    char_spans = [extract_noun_chunks(t) for t in texts]
    assert char_spans == [[(0, 13)], [(0, 21)]]
    spans, valid = char_spans_to_token_spans(char_spans, offsets, pad)
    assert spans.shape == (2, 1, 2) and valid.all()
    words = [
        tokenizer.convert_ids_to_tokens(
            enc['input_ids'][i, spans[i, 0, 0]:spans[i, 0, 1]].tolist())
        for i in range(2)
    ]
    assert words[0] == ['the', 'man', "'", 's', 'dog']
    assert words[1] == ['a', 'black', '-', 'and', '-', 'white', 'cat']

    # the official mapping (spaCy token index == BERT word id)
    # stops the possessive chunk before 'dog': spaCy has 4 tokens
    # (the, man, 's, dog) but BERT has 5 words (the, man, ', s, dog)
    doc = get_spacy_model()(texts[0])
    nc = list(doc.noun_chunks)[0]
    word_ids = enc.word_ids(0)
    starts = [i for i, w in enumerate(word_ids) if w == nc.start]
    ends = [i for i, w in enumerate(word_ids) if w == nc.end - 1]
    official = tokenizer.convert_ids_to_tokens(
        enc['input_ids'][0, min(starts):max(ends) + 1].tolist())
    assert official == ['the', 'man', "'", 's']
    assert 'dog' not in official and 'dog' in words[0]


def test_padding_fallback_and_invalid(tokenizer):
    texts = ['a man riding a horse', 'running fast']
    enc, offsets, pad = _encode(tokenizer, texts)
    char_spans = [extract_noun_chunks(t) for t in texts]
    assert char_spans[1] == []
    spans, valid = char_spans_to_token_spans(char_spans, offsets, pad)
    # [CLS] a man riding a horse [SEP] -> chunks 'a man'=[1,3) 'a horse'
    assert spans.shape == (2, 2, 2)
    assert spans[0].tolist() == [[1, 3], [4, 6]]
    assert valid[0].tolist() == [True, True]
    # no chunk: fallback = whole caption incl. [CLS]/[SEP] = 4 tokens
    assert spans[1].tolist() == [[0, 4], [0, 0]]
    assert valid[1].tolist() == [True, False]

    # a span that maps onto no token (beyond the text) is invalid
    spans, valid = char_spans_to_token_spans([[(0, 5), (100, 120)], []],
                                             offsets, pad)
    assert valid.tolist() == [[True, False], [True, False]]
    assert spans[0, 1].tolist() == [0, 0]

    with pytest.raises(ValueError, match='batch size'):
        char_spans_to_token_spans([[]], offsets, pad)
    with pytest.raises(ValueError, match=r'char_spans\[0\]\[0\]'):
        char_spans_to_token_spans([[(3, 3)], []], offsets, pad)


def test_char_span_to_token_labels(tokenizer):
    texts = ["the man's dog runs", 'a cat', 'a bird']
    enc, offsets, pad = _encode(tokenizer, texts)
    gt = torch.tensor([[0, 13], [-1, -1], [100, 110]])
    labels = char_span_to_token_labels(gt, offsets, pad)
    # [CLS] the man ' s dog runs [SEP]
    assert labels[0].tolist() == [0, 1, 1, 1, 1, 1, 0, 0]
    # unknown span and a span out of the text: no supervision at all
    assert (labels[1] == -100).all() and (labels[2] == -100).all()

    labels = char_span_to_token_labels(
        torch.tensor([[4, 7], [0, 1], [2, 6]]), offsets, pad)
    assert labels[0].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]  # 'man'
    # [CLS] a cat [SEP] [PAD]... ; padding is -100
    assert labels[1].tolist() == [0, 1, 0, 0] + [-100] * 4
    assert labels[2].tolist() == [0, 0, 1, 0] + [-100] * 4
    with pytest.raises(ValueError, match=r'\(3, 2\)'):
        char_span_to_token_labels(gt[:2], offsets, pad)


def test_token_span_to_char_span_round_trip(tokenizer):
    texts = ["the man's dog on the left", 'a black-and-white cat']
    enc, offsets, pad = _encode(tokenizer, texts)
    char_spans = [[(4, 13)], [(2, 17)]]  # "man's dog", "black-and-white"
    spans, _ = char_spans_to_token_spans(char_spans, offsets, pad)
    back = token_span_to_char_span(spans[:, 0], offsets, pad)
    assert back.tolist() == [[4, 13], [2, 17]]
    # a span of special tokens only ([CLS]) covers no text
    only_cls = torch.tensor([[0, 1], [0, 1]])
    assert token_span_to_char_span(only_cls, offsets, pad).tolist() == \
        [[0, 0], [0, 0]]
    # the fallback span (all non-pad tokens) covers the whole caption
    whole = torch.stack([torch.zeros(2, dtype=torch.long),
                         (~pad).sum(-1)], -1)
    assert token_span_to_char_span(whole, offsets, pad).tolist() == \
        [[0, len(texts[0])], [0, len(texts[1])]]
