# Copyright (c) OpenMMLab. All rights reserved.
"""Type aliases used across dmformer, following mmdet's conventions."""
from typing import List, Optional, Sequence, Union

from mmengine.config import ConfigDict

# Type hint of config data
ConfigType = Union[ConfigDict, dict]
OptConfigType = Optional[ConfigType]
# Type hint of one or more config data
MultiConfig = Union[ConfigType, List[ConfigType]]
OptMultiConfig = Optional[MultiConfig]

IntOrSeq = Union[int, Sequence[int]]
