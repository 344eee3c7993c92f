# Copyright (c) OpenMMLab. All rights reserved.
import pytest

from dmformer.utils import (extract_noun_chunks, get_spacy_model,
                            set_spacy_model)
from dmformer.utils.noun_chunks import DEFAULT_SPACY_MODEL


@pytest.mark.parametrize('method', ['spacy', 'pos_rule'])
def test_extract_noun_chunks_char_spans(method):
    text = "the man's dog is running on the grass"
    spans = extract_noun_chunks(text, method=method)
    assert spans == [(0, 13), (28, 37)]
    assert [text[s:e] for s, e in spans] == ["the man's dog", 'the grass']

    text = "a black-and-white cat sitting next to a woman's bag"
    spans = extract_noun_chunks(text, method=method)
    assert [text[s:e] for s, e in spans] == [
        'a black-and-white cat', "a woman's bag"
    ]


@pytest.mark.parametrize('text, phrases', [
    # the parser gives no chunk: "moving" is the root
    ('the small plain diamond moving left', ['the small plain diamond']),
    # the parser tags "square" as an adjective and loses the subject
    ('the small striped square far from the big orange diamond',
     ['the small striped square', 'the big orange diamond']),
    # participle clauses mistagged as nouns are cut off
    ('the purple square standing still', ['the purple square']),
    ('the square moving left', ['the square']),
    ('the blue star going up', ['the blue star']),
    # two-word relations are cut off ("right of", "next to", "far from")
    ('the diamond right of the small blue star',
     ['the diamond', 'the small blue star']),
    ('the small purple square next to the circle',
     ['the small purple square', 'the circle']),
    ('the big purple striped triangle far from the dotted diamond',
     ['the big purple striped triangle', 'the dotted diamond']),
    # a phrase that spaCy splits in two is kept whole
    ('the green striped square', ['the green striped square']),
])
def test_pos_rule_on_caption_fragments(text, phrases):
    spans = extract_noun_chunks(text, method='pos_rule')
    assert [text[s:e] for s, e in spans] == phrases


@pytest.mark.parametrize('text, phrases', [
    ('a man wearing a black hat is walking', ['a man', 'a black hat']),
    ('the front wheel of the bike', ['the front wheel', 'the bike']),
    ('the tall building on the left', ['the tall building', 'the left']),
    ('a very big brown dog', ['a very big brown dog']),
    ('it is a bird flying in the sky', ['it', 'a bird', 'the sky']),
    ('people', ['people']),
])
def test_pos_rule_keeps_well_parsed_phrases(text, phrases):
    spans = extract_noun_chunks(text, method='pos_rule')
    assert [text[s:e] for s, e in spans] == phrases


@pytest.mark.parametrize('method', ['spacy', 'pos_rule'])
def test_extract_noun_chunks_edge_cases(method):
    assert extract_noun_chunks('running fast', method=method) == []
    assert extract_noun_chunks('   ', method=method) == []
    with pytest.raises(ValueError, match='text must be a str'):
        extract_noun_chunks(None, method=method)
    with pytest.raises(ValueError, match="unknown noun-chunk method 'x'"):
        extract_noun_chunks('a cat', method='x')


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


@pytest.mark.parametrize('text, phrases', [
    # captions where the part-of-speech rule and spaCy's chunks differ
    ('a deer following behind two other deer', ['a deer', 'two other deer']),
    ('a white mouse with pink ears', ['a white mouse', 'pink ears']),
    ('a puppy dog on the left drinking milk',
     ['a puppy dog', 'the left drinking milk']),
])
def test_spacy_method_is_spacys_noun_chunks(text, phrases):
    spans = extract_noun_chunks(text, method='spacy')
    doc = get_spacy_model()(text)
    assert spans == [(nc.start_char, nc.end_char) for nc in doc.noun_chunks]
    assert [text[s:e] for s, e in spans] == phrases
