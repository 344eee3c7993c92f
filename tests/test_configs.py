# Copyright (c) OpenMMLab. All rights reserved.
"""Every config parses and names only registered components."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dmformer.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from dmformer.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True))


def _types(obj):
    """Yield every ``type`` value in a nested config."""
    if isinstance(obj, dict):
        if isinstance(obj.get('type'), str):
            yield obj['type'], obj
        for value in obj.values():
            yield from _types(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _types(value)


def _check_registered(registry, cfg):
    for name, _ in _types(cfg):
        assert registry.get(name) is not None, f'{name} not in {registry}'


def test_configs_found():
    assert 'configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py' in CONFIGS
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses_and_resolves(path):
    register_all_modules()
    init_default_scope('dmformer')
    cfg = Config.fromfile(osp.join(ROOT, path))
    if 'model' in cfg:
        assert MODELS.get(cfg.model.type) is not None
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key, None)
        if not loader:
            continue
        dataset = loader['dataset']
        assert DATASETS.get(dataset['type']) is not None
        for sub in dataset.get('datasets', [dataset]):
            _check_registered(TRANSFORMS, sub.get('pipeline', []))
    for key in ('val_evaluator', 'test_evaluator'):
        if cfg.get(key, None):
            _check_registered(METRICS, cfg[key])


def test_paper_recipes():
    pre = Config.fromfile(
        osp.join(ROOT, 'configs/dmformer/'
                 'dmformer_swin-t_4xb2-10e_refcoco-pretrain.py'))
    fine = Config.fromfile(
        osp.join(ROOT,
                 'configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py'))
    assert pre.train_cfg.max_epochs == 10
    assert pre.param_scheduler[0]['milestones'] == [6, 8]
    assert pre.param_scheduler[0]['gamma'] == 0.05
    assert fine.train_cfg.max_epochs == 6
    assert fine.param_scheduler[0]['milestones'] == [3, 5]
    assert fine.param_scheduler[0]['gamma'] == 0.1
    optim = fine.optim_wrapper
    assert optim.optimizer.lr == 1e-4 and optim.optimizer.weight_decay == 5e-4
    assert optim.clip_grad.max_norm == 0.1
    keys = optim.paramwise_cfg.custom_keys
    assert optim.optimizer.lr * keys['backbone']['lr_mult'] == 5e-5
    assert optim.optimizer.lr * keys['language_model.bert']['lr_mult'] == \
        pytest.approx(1e-5)


def test_paper_configs_chain_their_weights():
    """GLIP-T -> pre-training -> fine-tuning: each stage loads the file the
    previous one writes (its work dir and last epoch), the fine-tunings drop
    the pre-trained class heads only, and the specified name trains the
    Ref-YouTube-VOS fine-tuning."""
    import re

    def cfg(name):
        return Config.fromfile(osp.join(ROOT, 'configs', name))

    def last_epoch(name):
        stem = osp.splitext(osp.basename(name))[0]
        return f'work_dirs/{stem}/epoch_{cfg(name).train_cfg.max_epochs}.pth'

    pretrain = 'dmformer/dmformer_swin-t_4xb2-10e_refcoco-pretrain.py'
    ytvos = 'dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py'
    assert cfg(pretrain).load_from == 'checkpoints/glip-t_dmformer.pth'
    assert cfg(pretrain).default_hooks.pretrained_weights.get(
        'drop_keys', ()) == ()
    for name, parent in [
        (ytvos, pretrain),
        ('dmformer_swin_t_ytvos.py', pretrain),
        ('dmformer/dmformer_swin-t_8xb2-6e_a2d-sentences.py', pretrain),
        ('dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos-ft_mevis.py', ytvos),
    ]:
        c = cfg(name)
        assert c.load_from == last_epoch(parent), name
        hook = c.default_hooks.pretrained_weights
        assert hook.type == 'PretrainedWeightsHook'
        assert hook.get('check_frozen', True)
        drop = [re.compile(p) for p in hook.drop_keys]
        assert all(p.match('bbox_head.cls_branches.3.bias') for p in drop)
        for kept in ('bbox_head.reg_branches.0.weight',
                     'bbox_head.mask_head.controller.layers.0.weight',
                     'backbone.stages.0.blocks.0.attn.w_msa.qkv.weight'):
            assert not any(p.match(kept) for p in drop), (name, kept)
    alias = cfg('dmformer_swin_t_ytvos.py')
    assert alias.model == cfg(ytvos).model
    assert alias.train_dataloader == cfg(ytvos).train_dataloader


# Captions in the style of Ref-YouTube-VOS, A2D-Sentences and RefCOCO:
# relations, participles, possessives, numbers, capitals and punctuation.
REAL_STYLE_CAPTIONS = [
    'a deer following behind two other deer',
    'a white mouse with pink ears',
    'a puppy dog on the left drinking milk',
    'A man in a black jacket is riding a horse.',
    'the person on the right holding a surfboard',
    'a brown and white cat sitting on a sofa',
    'The zebra that is eating grass on the far left',
    "a woman's hand holding a red cup",
    'a small black dog running toward the camera',
    'a parrot which is biting the fingers of a person',
    'man in white shirt',
    'left most giraffe',
    'the second car from the front',
    'a skateboarder doing a trick in the air',
    'two ducks swimming in the pond side by side',
    'a bear walking on rocks next to a river',
    'the shark swimming under the man',
    'a person wearing a helmet rides a dirt bike',
    'a monkey sitting on a tree branch eating a banana',
    'a turtle crawling on the sand',
]
PAPER_CONFIGS = [
    p for p in CONFIGS
    if '_swin-t_' in p or p == 'configs/dmformer_swin_t_ytvos.py'
]


def _noun_chunk_steps(cfg):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key, None)
        if not loader:
            continue
        dataset = loader['dataset']
        for sub in dataset.get('datasets', [dataset]):
            for name, step in _types(sub.get('pipeline', [])):
                if name == 'ExtractNounChunks':
                    yield key, step


@pytest.mark.parametrize('path', PAPER_CONFIGS)
def test_paper_configs_take_spacys_noun_chunks(path):
    """The subject candidates of the paper configs are exactly spaCy's
    ``doc.noun_chunks``, as in the official code."""
    from dmformer.utils import get_spacy_model
    register_all_modules()
    init_default_scope('dmformer')
    steps = list(_noun_chunk_steps(Config.fromfile(osp.join(ROOT, path))))
    assert steps, f'{path} extracts no noun chunks'
    nlp = get_spacy_model()
    expected = [[(nc.start_char, nc.end_char) for nc in nlp(text).noun_chunks]
                for text in REAL_STYLE_CAPTIONS]
    for key, step in steps:
        transform = TRANSFORMS.build(step)
        got = [
            transform.transform(dict(text=text))['noun_chunks']
            for text in REAL_STYLE_CAPTIONS
        ]
        assert got == expected, (path, key)


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if re.search(r'_\d+xb\d+-', p)])
def test_config_name_gives_the_batch(path):
    """``NxbB`` in a config's name: N GPUs x B clips, the batch its learning
    rates were set for (``auto_scale_lr.base_batch_size``)."""
    gpus, per_gpu = map(int, re.search(r'_(\d+)xb(\d+)-', path).groups())
    cfg = Config.fromfile(osp.join(ROOT, path))
    if '_test-' in path:
        return  # a test-only config names the training run's batch
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu
