# Copyright (c) OpenMMLab. All rights reserved.
"""Map character spans (noun chunks, subject phrase) onto sub-word tokens.

Both functions work on the character ``offsets`` returned by a fast
tokenizer (``return_offsets_mapping=True``), where special and padding
tokens have the empty span ``(0, 0)``. A token belongs to a character span
``[s, e)`` when the two intervals overlap. This replaces the official
matching of spaCy token indices against BERT word ids, which shifts or
drops chunks when the two segmentations differ (e.g. possessives).
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def _token_char_ranges(offsets: Tensor,
                       word_pad_mask: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Split offsets into token starts/ends and a 'real token' mask."""
    if offsets.dim() != 3 or offsets.shape[-1] != 2:
        raise ValueError('offsets must have shape (B, L, 2), got '
                         f'{tuple(offsets.shape)}')
    if word_pad_mask.shape != offsets.shape[:2]:
        raise ValueError(f'word_pad_mask shape {tuple(word_pad_mask.shape)} '
                         f'does not match offsets {tuple(offsets.shape)}')
    tok_start, tok_end = offsets[..., 0], offsets[..., 1]
    # special tokens ([CLS], [SEP]) and pads have the empty span (0, 0)
    is_text_token = (tok_end > tok_start) & ~word_pad_mask
    return tok_start, tok_end, is_text_token


def char_spans_to_token_spans(char_spans: Sequence[Sequence[Tuple[int,
                                                                  int]]],
                              offsets: Tensor,
                              word_pad_mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Convert per-caption character spans into token spans.

    Args:
        char_spans (list[list[tuple[int, int]]]): For each of the B captions,
            the ``[start, end)`` character spans of its noun chunks.
        offsets (Tensor): Long (B, L, 2) character offsets of the tokens,
            ``(0, 0)`` for special and padding tokens.
        word_pad_mask (Tensor): Bool (B, L), True = padding token.

    Returns:
        tuple[Tensor, Tensor]:

        - spans (Tensor): Long (B, K, 2) token spans ``[start, end)`` with
          K = max(1, max number of chunks); ``(0, 0)`` for invalid entries.
        - valid (Tensor): Bool (B, K), whether the chunk was mapped onto at
          least one token. A caption none of whose chunks maps gets the
          fallback chunk 0 = all its non-pad tokens, [CLS]/[SEP] included
          (as in the official code), so every row has at least one valid chunk.
    """
    tok_start, tok_end, is_text_token = _token_char_ranges(
        offsets, word_pad_mask)
    B, L = word_pad_mask.shape
    if len(char_spans) != B:
        raise ValueError(f'char_spans has {len(char_spans)} captions but '
                         f'offsets has batch size {B}')
    device = offsets.device
    K = max([1] + [len(s) for s in char_spans])
    padded = torch.full((B, K, 2), -1, dtype=torch.long)
    for i, spans in enumerate(char_spans):
        for k, span in enumerate(spans):
            if len(span) != 2 or int(span[0]) < 0 or \
                    int(span[1]) <= int(span[0]):
                raise ValueError(f'char_spans[{i}][{k}] = {span!r} is not '
                                 'a non-empty [start, end) span')
            padded[i, k, 0] = int(span[0])
            padded[i, k, 1] = int(span[1])
    padded = padded.to(device)
    char_start = padded[..., 0:1]  # (B, K, 1)
    char_end = padded[..., 1:2]
    # overlap of every (chunk, token) pair: (B, K, L)
    overlap = (tok_start[:, None, :] < char_end) & \
        (tok_end[:, None, :] > char_start) & \
        is_text_token[:, None, :] & (char_start >= 0)
    arange = torch.arange(L, device=device)
    start = torch.where(overlap, arange, L).amin(-1)
    end = torch.where(overlap, arange, -1).amax(-1) + 1
    valid = overlap.any(-1)
    spans = torch.stack([start, end], -1)
    spans = torch.where(valid[..., None], spans, torch.zeros_like(spans))

    # fallback: whole caption (incl. [CLS]/[SEP]) for captions w/o chunk
    no_chunk = ~valid.any(-1)
    num_valid = (~word_pad_mask).sum(-1)
    fallback = torch.stack([torch.zeros_like(num_valid), num_valid], -1)
    spans[:, 0] = torch.where(no_chunk[:, None], fallback, spans[:, 0])
    valid[:, 0] = valid[:, 0] | no_chunk
    return spans, valid


def char_span_to_token_labels(spans: Tensor, offsets: Tensor,
                              word_pad_mask: Tensor) -> Tensor:
    """Token-level subject labels from a character span per caption.

    Args:
        spans (Tensor): Long (B, 2) ``[start, end)`` character span of the
            subject phrase of each caption, or negative values when unknown.
        offsets (Tensor): Long (B, L, 2) token character offsets.
        word_pad_mask (Tensor): Bool (B, L), True = padding token.

    Returns:
        Tensor: Long (B, L) labels: 1 for tokens overlapping the span, 0 for
        the other non-pad tokens ([CLS]/[SEP] included), -100 (ignored) for
        padding. Every label of a caption whose span is unknown, or maps onto
        no token (e.g. truncated away), is -100.
    """
    tok_start, tok_end, is_text_token = _token_char_ranges(
        offsets, word_pad_mask)
    B = word_pad_mask.shape[0]
    spans = torch.as_tensor(spans, dtype=torch.long, device=offsets.device)
    if spans.shape != (B, 2):
        raise ValueError(
            f'spans must have shape ({B}, 2), got {tuple(spans.shape)}')
    char_start, char_end = spans[:, 0:1], spans[:, 1:2]
    known = (char_start >= 0) & (char_end > char_start)  # (B, 1)
    inside = (tok_start < char_end) & (tok_end > char_start) & \
        is_text_token & known
    labels = inside.long()
    has_label = inside.any(-1, keepdim=True)
    ignore = word_pad_mask | ~has_label
    return labels.masked_fill(ignore, -100)


def token_span_to_char_span(token_spans: Tensor, offsets: Tensor,
                            word_pad_mask: Tensor) -> Tensor:
    """Character span covered by the text tokens of token spans (the
    inverse of :func:`char_spans_to_token_spans`).

    Args:
        token_spans (Tensor): Long (B, 2) token spans ``[start, end)``.
        offsets (Tensor): Long (B, L, 2) token character offsets.
        word_pad_mask (Tensor): Bool (B, L), True = padding token.

    Returns:
        Tensor: Long (B, 2) ``[start, end)`` character spans; ``(0, 0)`` for
        a span that covers no text token (e.g. only [CLS]/[SEP]).
    """
    tok_start, tok_end, is_text_token = _token_char_ranges(
        offsets, word_pad_mask)
    positions = torch.arange(offsets.shape[1], device=offsets.device)
    # (B, L): text token inside the span
    inside = (positions[None] >= token_spans[:, :1]) & \
        (positions[None] < token_spans[:, 1:]) & is_text_token
    big = torch.iinfo(offsets.dtype).max
    start = tok_start.masked_fill(~inside, big).amin(1)
    end = tok_end.masked_fill(~inside, 0).amax(1)
    start = torch.where(inside.any(1), start, torch.zeros_like(start))
    return torch.stack([start, end], 1)
