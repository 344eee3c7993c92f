# Copyright (c) OpenMMLab. All rights reserved.
from .setup_env import register_all_modules
from .typing_utils import (ConfigType, MultiConfig, OptConfigType,
                           OptMultiConfig)

__all__ = [
    'register_all_modules', 'ConfigType', 'OptConfigType', 'MultiConfig',
    'OptMultiConfig'
]
