# Copyright (c) OpenMMLab. All rights reserved.
"""Every module of the package imports, and importing stays light."""
import importlib
import pkgutil
import subprocess
import sys

import pytest

import dmformer


def _all_modules():
    names = ['dmformer']
    for info in pkgutil.walk_packages(dmformer.__path__, 'dmformer.'):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize('name', _all_modules())
def test_import_module(name):
    importlib.import_module(name)


def test_module_list_is_not_empty():
    modules = _all_modules()
    assert 'dmformer.registry' in modules
    assert 'dmformer.engine.checkpoint_compat' in modules


def test_top_level_import_is_light():
    code = ('import sys, dmformer; from dmformer.registry import MODELS; '
            'heavy = [m for m in ("mmdet", "mmcv.ops", "transformers", '
            '"spacy", "cv2") if m in sys.modules]; print(",".join(heavy))')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         check=True).stdout.strip()
    assert out == '', f'importing dmformer pulled in: {out}'


def test_mmcv_ops_available():
    from mmcv.ops import MultiScaleDeformableAttention  # noqa: F401


def test_register_all_modules_sets_scope():
    from mmengine.registry import DefaultScope

    from dmformer.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    assert DefaultScope.get_current_instance().scope_name == 'dmformer'
