# Copyright (c) OpenMMLab. All rights reserved.
"""Caption transforms: cleaning and noun-chunk extraction."""
from typing import Optional

from mmcv.transforms import BaseTransform

from dmformer.registry import TRANSFORMS


def clean_caption(text: str, where: Optional[str] = None) -> str:
    """Clean a referring expression like the official Ref-YouTube-VOS loader.

    Lower-cases the text and collapses every run of whitespace into a
    single space (``' '.join(text.lower().split())``).

    Args:
        text (str): Raw expression.
        where (str, optional): Description of the expression used in error
            messages, e.g. ``"video 'abc', expression '0'"``.

    Returns:
        str: The cleaned caption.

    Raises:
        ValueError: ``text`` is not a str or is empty after cleaning.

    Examples:
        >>> clean_caption('  A  Man\\tRiding a HORSE ')
        'a man riding a horse'
    """
    if not isinstance(text, str):
        raise ValueError(f'Caption of {where or "a sample"} must be a str, '
                         f'got {type(text).__name__}.')
    cleaned = ' '.join(text.lower().split())
    if not cleaned:
        raise ValueError(
            f'Caption of {where or "a sample"} is empty after cleaning '
            f'(raw caption {text!r}).')
    return cleaned


@TRANSFORMS.register_module()
class CleanCaption(BaseTransform):
    """Clean ``results['text']`` with :func:`clean_caption`.

    The RVOS datasets already clean captions when loading annotations; this
    transform is for datasets or pipelines that do not.

    Required Keys:

    - text (str)

    Modified Keys:

    - text (str)

    Raises:
        ValueError: The caption is empty after cleaning (the message names
            the video and expression ids when present).
    """

    def transform(self, results: dict) -> dict:
        """Clean the caption.

        Args:
            results (dict): Result dict.

        Returns:
            dict: ``results`` with the cleaned ``text``.
        """
        where = (f'video {results.get("video_id", "?")!r}, expression '
                 f'{results.get("exp_id", "?")!r}')
        results['text'] = clean_caption(results['text'], where)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'


@TRANSFORMS.register_module()
class ExtractNounChunks(BaseTransform):
    """Extract the spaCy noun chunks of the caption (subject candidates).

    Uses :func:`dmformer.utils.noun_chunks.extract_noun_chunks` (imported and
    its spaCy model loaded on the first call, so building the pipeline is
    cheap). The spans are character spans of the *current* ``text``, so run
    this transform after any transform that rewrites the caption (flip).

    Required Keys:

    - text (str)

    Added Keys:

    - noun_chunks (list[tuple[int, int]]): ``[start, end)`` character spans.

    Args:
        spacy_model (str, optional): spaCy pipeline name. None uses the
            default of :mod:`dmformer.utils.noun_chunks`. Defaults to None.
        method (str): ``'spacy'``: spaCy's ``doc.noun_chunks``, the
            official candidates; ``'pos_rule'``: the part-of-speech rule of
            :func:`dmformer.utils.noun_chunks.noun_phrases`, made for the
            synthetic captions. Defaults to ``'spacy'``.
    """

    def __init__(self,
                 spacy_model: Optional[str] = None,
                 method: str = 'spacy') -> None:
        from dmformer.utils.noun_chunks import check_noun_chunk_method
        self.spacy_model = spacy_model
        self.method = check_noun_chunk_method(method)

    def transform(self, results: dict) -> dict:
        """Add ``noun_chunks``.

        Args:
            results (dict): Result dict.

        Returns:
            dict: ``results`` with ``noun_chunks``.
        """
        from dmformer.utils.noun_chunks import extract_noun_chunks
        chunks = extract_noun_chunks(
            results['text'], self.spacy_model, method=self.method)
        results['noun_chunks'] = [(int(s), int(e)) for s, e in chunks]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(spacy_model='
                f'{self.spacy_model!r}, method={self.method!r})')
