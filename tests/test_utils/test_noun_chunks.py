# Copyright (c) OpenMMLab. All rights reserved.
import pytest

from dmformer.utils import (extract_noun_chunks, get_spacy_model,
                            set_spacy_model)
from dmformer.utils.noun_chunks import DEFAULT_SPACY_MODEL


def test_extract_noun_chunks_char_spans():
    text = "the man's dog is running on the grass"
    spans = extract_noun_chunks(text)
    assert spans == [(0, 13), (28, 37)]
    assert [text[s:e] for s, e in spans] == ["the man's dog", 'the grass']

    text = "a black-and-white cat sitting next to a woman's bag"
    spans = extract_noun_chunks(text)
    assert [text[s:e] for s, e in spans] == [
        'a black-and-white cat', "a woman's bag"
    ]


def test_extract_noun_chunks_edge_cases():
    assert extract_noun_chunks('running fast') == []
    assert extract_noun_chunks('   ') == []
    with pytest.raises(ValueError, match='text must be a str'):
        extract_noun_chunks(None)


def test_spacy_model_cache_and_errors():
    assert get_spacy_model() is get_spacy_model(DEFAULT_SPACY_MODEL)
    with pytest.raises(FileNotFoundError, match='no_such_spacy_model'):
        get_spacy_model('no_such_spacy_model')
    with pytest.raises(ValueError, match='non-empty'):
        set_spacy_model('')
    set_spacy_model('no_such_spacy_model')
    try:
        with pytest.raises(FileNotFoundError):
            extract_noun_chunks('a cat')
        # an explicit name overrides the default
        assert extract_noun_chunks('a cat', DEFAULT_SPACY_MODEL) == [(0, 5)]
    finally:
        set_spacy_model(DEFAULT_SPACY_MODEL)
