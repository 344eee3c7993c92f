# Copyright (c) OpenMMLab. All rights reserved.
from .rvos_data_sample import RVOSDataSample

__all__ = ['RVOSDataSample']
