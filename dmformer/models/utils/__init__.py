# Copyright (c) OpenMMLab. All rights reserved.
from .misc import flatten_mlvl, get_valid_ratio, masked_mean
from .token_spans import (char_span_to_token_labels, char_spans_to_token_spans,
                          token_span_to_char_span)

__all__ = [
    'masked_mean', 'get_valid_ratio', 'flatten_mlvl',
    'char_spans_to_token_spans', 'char_span_to_token_labels',
    'token_span_to_char_span'
]
