# Copyright (c) OpenMMLab. All rights reserved.
"""Helpers shared by the test suite."""
import importlib.util
import os.path as osp
from types import ModuleType

#: The repository root (this package sits in ``<root>/dmformer/testing``).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_script(path: str) -> ModuleType:
    """Import a script of the repository (``tools/...``, ``demo/...``)
    that is not part of the package, by its file path.

    Args:
        path (str): Path of the ``.py`` file, absolute or relative to the
            repository root.

    Returns:
        ModuleType: The executed module, named after the file.
    """
    if not osp.isabs(path):
        path = osp.join(REPO_ROOT, path)
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
