# Copyright (c) OpenMMLab. All rights reserved.
import pytest

from dmformer.datasets.transforms import CleanCaption, ExtractNounChunks
from dmformer.datasets.transforms.text import clean_caption


def test_clean_caption():
    assert clean_caption('  A  Man\tRiding\n a HORSE ') == \
        'a man riding a horse'
    assert clean_caption('already clean') == 'already clean'
    with pytest.raises(ValueError, match="video 'v', expression '3'.*empty"):
        clean_caption(' \t\n', "video 'v', expression '3'")
    with pytest.raises(ValueError, match='must be a str'):
        clean_caption(None)


def test_clean_caption_transform():
    out = CleanCaption().transform(dict(text='The  LEFT  dog'))
    assert out['text'] == 'the left dog'
    with pytest.raises(ValueError, match="video 'abc', expression '7'"):
        CleanCaption().transform(dict(text='  ', video_id='abc', exp_id='7'))
    assert repr(CleanCaption()) == 'CleanCaption()'


def test_extract_noun_chunks_spacy():
    out = ExtractNounChunks().transform(
        dict(text='a man riding a brown horse'))
    chunks = out['noun_chunks']
    assert chunks == [(0, 5), (13, 26)]
    assert [out['text'][s:e] for s, e in chunks] == ['a man', 'a brown horse']


def test_extract_noun_chunks_model_and_repr(monkeypatch):
    import dmformer.utils.noun_chunks as noun_chunks
    calls = []

    def fake(text, spacy_model=None, method='spacy'):
        calls.append((spacy_model, method))
        return [(0, 1)]

    monkeypatch.setattr(noun_chunks, 'extract_noun_chunks', fake)
    out = ExtractNounChunks(spacy_model='my_model').transform(dict(text='x'))
    assert out['noun_chunks'] == [(0, 1)]
    ExtractNounChunks(method='pos_rule').transform(dict(text='x'))
    assert calls == [('my_model', 'spacy'), (None, 'pos_rule')]
    assert repr(ExtractNounChunks()) == (
        "ExtractNounChunks(spacy_model=None, method='spacy')")
    with pytest.raises(ValueError, match='unknown noun-chunk method'):
        ExtractNounChunks(method='chunks')
