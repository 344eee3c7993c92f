# Copyright (c) OpenMMLab. All rights reserved.
"""Helpers shared by the test suite."""
import importlib.util
import math
import os.path as osp
import zlib
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


def seeded_parameters(model, seed_name=None) -> None:
    """Fill every parameter of ``model`` from its *name*, in place.

    Each parameter is drawn from a generator seeded with the CRC32 of its
    name (buffers are left alone): 1-D weights ~ 1 + 0.02 N(0, 1) (norm
    scales), 1-D biases ~ 0.02 N(0, 1), matrices ~ N(0, 1) / sqrt(fan_in).
    Unlike the modules' initialisers, the values do not depend on the order
    in which modules are built, and no layer starts at zero.

    Args:
        model (torch.nn.Module): The model to fill.
        seed_name (callable, optional): Maps a parameter name to the name
            its seed is taken from, so that values pinned before a module
            was renamed still apply (e.g.
            :func:`dmformer.models.utils.ckpt_convert.current_to_legacy_key`).
            Defaults to the name itself.
    """
    import torch
    with torch.no_grad():
        for name, param in model.named_parameters():
            if seed_name is not None:
                name = seed_name(name)
            gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            noise = torch.randn(param.shape, generator=gen)
            if param.dim() == 1:
                value = noise * 0.02 + (1. if name.endswith('weight') else 0.)
            else:
                value = noise / math.sqrt(param[0].numel())
            param.copy_(value)


def sample_with_id_maps(id_maps, video_id: str = 'v', **metainfo):
    """A training sample whose ground truth is only the object-id maps, for
    the heads that read ``gt_instances.id_maps`` (the referent's own
    ``masks`` are all False).

    Args:
        id_maps (Tensor): (T, H, W) object id per pixel.
        video_id (str): ``video_id`` of the metainfo. Defaults to 'v'.
        **metainfo: Other metainfo fields (e.g. ``video_expressions``,
            ``object_categories``).

    Returns:
        :obj:`RVOSDataSample`
    """
    import torch
    from mmengine.structures import InstanceData

    from dmformer.structures import RVOSDataSample
    sample = RVOSDataSample(metainfo=dict(video_id=video_id, **metainfo))
    sample.gt_instances = InstanceData(
        masks=torch.zeros_like(id_maps, dtype=torch.bool), id_maps=id_maps)
    return sample
