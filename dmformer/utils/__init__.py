# Copyright (c) OpenMMLab. All rights reserved.
from .config_utils import reroot_data
from .noun_chunks import extract_noun_chunks, get_spacy_model, set_spacy_model
from .setup_env import (register_all_modules, tune_glibc_malloc,
                        use_gloo_without_cuda)
from .typing_utils import (ConfigType, MultiConfig, OptConfigType,
                           OptMultiConfig)

__all__ = [
    'register_all_modules', 'tune_glibc_malloc', 'use_gloo_without_cuda',
    'ConfigType', 'OptConfigType', 'MultiConfig', 'OptMultiConfig',
    'extract_noun_chunks', 'get_spacy_model', 'set_spacy_model',
    'reroot_data'
]
