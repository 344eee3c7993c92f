# Copyright (c) OpenMMLab. All rights reserved.
"""DMFormer: Decoupled Multimodal Transformers for referring video object
segmentation, built on MMEngine / MMCV / MMDetection.

Importing the package is cheap and has no side effects; components are
registered lazily through :mod:`dmformer.registry` (``locations``) or
explicitly with :func:`dmformer.utils.register_all_modules`.
"""
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
