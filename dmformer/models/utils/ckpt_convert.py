# Copyright (c) OpenMMLab. All rights reserved.
"""Checkpoint conversion to DMFormer (MMEngine) parameter names.

Two sources are supported:

- GLIP-T (:func:`convert_glip`): the Swin-T visual backbone and the BERT-base
  language backbone that DMFormer initialises from and freezes. Both the
  official GLIP checkpoint (``maskrcnn_benchmark`` names,
  ``module.backbone.body.*`` / ``module.language_backbone.body.model.*``)
  and MMDetection's converted GLIP checkpoint (``backbone.*`` already in
  mmdet's Swin names, ``language_model.language_backbone.body.model.*``)
  are accepted.
- The official DMFormer (``DMMI``) checkpoint
  (:func:`convert_dmformer_official`), with the official module names
  (``backbone.0.body.*``, ``text_encoder.model.*``, ``vlfuse_list_*``,
  ``visionlayer_list_*``, ``transformer.decoder.*``, ``pixel_decoder.*``,
  ``controller.*``, ...).

Every mapping is a list of :class:`KeyRule` templates, each usable in both
directions, so the inverse conversions (:func:`swin_mmdet_to_official`,
:func:`dmformer_mm_to_official`) are exact and are what the tests use to
build official-style state dicts from a randomly initialised DMFormer.

Weight layouts that differ and are fixed here:

- Microsoft Swin's ``PatchMerging`` concatenates the 2x2 neighbours as
  ``[x(0,0), x(1,0), x(0,1), x(1,1)]`` channel blocks, while mmdet's
  ``PatchMerging`` uses ``nn.Unfold``, whose channels are ``c * 4 + k`` with
  kernel positions ``k`` in the order (0,0), (0,1), (1,0), (1,1). The
  ``reduction`` weight columns and the ``norm`` parameters are permuted
  accordingly (the same fix as mmdet's ``swin_converter``).
- The Deformable-DETR decoder layer names its norms after creation order
  (``norm2`` follows self-attention, ``norm1`` cross-attention, ``norm3``
  the FFN), mmdet's ``DeformableDetrTransformerDecoderLayer`` after use
  order (``norms.0``, ``norms.1``, ``norms.2``).

Nothing else changes shape: the nn.MultiheadAttention ``in_proj`` layout is
the one wrapped by mmcv's ``MultiheadAttention`` (``attn.*``), and
``MSDeformAttn`` has the same four linear layers as mmcv's
``MultiScaleDeformableAttention``.
"""
import argparse
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    'KeyRule', 'ConversionReport', 'KeyCheckResult',
    'correct_unfold_reduction_order', 'correct_unfold_norm_order',
    'revert_unfold_reduction_order', 'revert_unfold_norm_order',
    'load_state_dict_from_file', 'swin_official_to_mmdet',
    'swin_mmdet_to_official', 'convert_glip', 'convert_dmformer_official',
    'dmformer_mm_to_official', 'check_state_dict',
    'describe_checkpoint_mismatch', 'save_converted',
    'build_model_from_config', 'LEGACY_MODULE_NAMES', 'is_legacy_state_dict',
    'upgrade_legacy_keys', 'current_to_legacy_key'
]

StateDict = Dict[str, Tensor]
ValueFn = Callable[[Tensor], Tensor]

# Microsoft's block order [x(0,0), x(1,0), x(0,1), x(1,1)] read in unfold's
# kernel order (0,0), (0,1), (1,0), (1,1). The permutation is its own
# inverse.
_UNFOLD_ORDER = [0, 2, 1, 3]


def correct_unfold_reduction_order(x: Tensor) -> Tensor:
    """Permute a Microsoft-Swin ``PatchMerging.reduction`` weight to mmdet's
    ``nn.Unfold`` channel order.

    Args:
        x (Tensor): Weight of shape (C_out, 4 * C) whose input channels are
            4 blocks of C (one per 2x2 neighbour).

    Returns:
        Tensor: Weight of shape (C_out, 4 * C), input channel ``c * 4 + k``.
    """
    out_channels, in_channels = x.shape
    # [C_out, 4C] -> [C_out, 4, C] -> [C_out, C, 4] -> [C_out, 4C]
    x = x.reshape(out_channels, 4, in_channels // 4)[:, _UNFOLD_ORDER]
    return x.transpose(1, 2).reshape(out_channels, in_channels)


def correct_unfold_norm_order(x: Tensor) -> Tensor:
    """Permute a Microsoft-Swin ``PatchMerging.norm`` weight or bias (4C,)
    to mmdet's ``nn.Unfold`` channel order."""
    in_channels = x.shape[0]
    # [4C] -> [4, C] -> [C, 4] -> [4C]
    x = x.reshape(4, in_channels // 4)[_UNFOLD_ORDER]
    return x.transpose(0, 1).reshape(in_channels)


def revert_unfold_reduction_order(x: Tensor) -> Tensor:
    """Inverse of :func:`correct_unfold_reduction_order`."""
    out_channels, in_channels = x.shape
    # [C_out, 4C] -> [C_out, C, 4] -> [C_out, 4, C] -> [C_out, 4C]
    x = x.reshape(out_channels, in_channels // 4, 4).transpose(1, 2)
    return x[:, _UNFOLD_ORDER].reshape(out_channels, in_channels)


def revert_unfold_norm_order(x: Tensor) -> Tensor:
    """Inverse of :func:`correct_unfold_norm_order`."""
    in_channels = x.shape[0]
    # [4C] -> [C, 4] -> [4, C] -> [4C]
    x = x.reshape(in_channels // 4, 4).transpose(0, 1)
    return x[_UNFOLD_ORDER].reshape(in_channels)


class KeyRule:
    """A two-way renaming rule between two key templates.

    A template is a dotted key where ``{name}`` matches one key segment
    (no dot) and ``{rest}`` matches the remainder (dots allowed), e.g.
    ``'layers.{i}.blocks.{j}.mlp.fc1.{rest}'``. Both templates must use the
    same placeholders.

    Args:
        src (str): Template on the source (official) side.
        dst (str): Template on the destination (DMFormer) side.
        forward_fn (callable, optional): Applied to the value when
            converting src -> dst. Defaults to None (unchanged).
        backward_fn (callable, optional): Applied when converting
            dst -> src. Required whenever ``forward_fn`` is given.
    """

    _FIELD = re.compile(r'\{(\w+)\}')

    def __init__(self,
                 src: str,
                 dst: str,
                 forward_fn: Optional[ValueFn] = None,
                 backward_fn: Optional[ValueFn] = None) -> None:
        if (forward_fn is None) != (backward_fn is None):
            raise ValueError(f'KeyRule {src!r} -> {dst!r}: a value '
                             'transform needs its inverse.')
        if set(self._FIELD.findall(src)) != set(self._FIELD.findall(dst)):
            raise ValueError(f'KeyRule {src!r} -> {dst!r}: both templates '
                             'must use the same placeholders.')
        self.src, self.dst = src, dst
        self.forward_fn, self.backward_fn = forward_fn, backward_fn
        self._src_re = self._compile(src)
        self._dst_re = self._compile(dst)

    @classmethod
    def _compile(cls, template: str) -> 're.Pattern':
        pattern, pos = '', 0
        for match in cls._FIELD.finditer(template):
            pattern += re.escape(template[pos:match.start()])
            name = match.group(1)
            pattern += f'(?P<{name}>.+)' if name == 'rest' \
                else f'(?P<{name}>[^.]+)'
            pos = match.end()
        pattern += re.escape(template[pos:])
        return re.compile(pattern + r'\Z')

    def apply(self, key: str, value: Tensor,
              reverse: bool = False) -> Optional[Tuple[str, Tensor]]:
        """Rename ``key`` (and transform ``value``) if the rule matches.

        Returns:
            tuple[str, Tensor] | None: the new key and value, or None when
            the key does not match the rule's input template.
        """
        regex, out, fn = (self._dst_re, self.src, self.backward_fn) \
            if reverse else (self._src_re, self.dst, self.forward_fn)
        match = regex.match(key)
        if match is None:
            return None
        new_key = out.format(**match.groupdict())
        return new_key, (fn(value) if fn is not None else value)

    def __repr__(self) -> str:
        return f'KeyRule({self.src!r} -> {self.dst!r})'


@dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
        num_converted (int): Number of tensors written.
        skipped (dict[str, list[str]]): Source keys left out, grouped by the
            reason (a short sentence).
    """
    num_converted: int = 0
    skipped: Dict[str, List[str]] = field(default_factory=dict)

    def skip(self, reason: str, key: str) -> None:
        self.skipped.setdefault(reason, []).append(key)

    def summary(self) -> List[str]:
        """Human-readable lines (one per skip reason, with counts and up to
        three example keys)."""
        lines = [f'converted tensors: {self.num_converted}']
        for reason, keys in self.skipped.items():
            examples = ', '.join(keys[:3]) + (', ...' if len(keys) > 3 else '')
            lines.append(f'skipped {len(keys)} ({reason}): {examples}')
        return lines

    def to_meta(self) -> Dict[str, int]:
        return {reason: len(keys) for reason, keys in self.skipped.items()}


def _apply_rules(state_dict: Mapping[str, Tensor], rules: Sequence[KeyRule],
                 reverse: bool, prefix_in: str,
                 prefix_out: str) -> 'OrderedDict[str, Tensor]':
    """Rename the keys under ``prefix_in`` with the first matching rule;
    a key under the prefix that no rule matches is an error."""
    out = OrderedDict()
    for key, value in state_dict.items():
        if not key.startswith(prefix_in):
            continue
        local = key[len(prefix_in):]
        for rule in rules:
            result = rule.apply(local, value, reverse=reverse)
            if result is not None:
                new_key = prefix_out + result[0]
                if new_key in out:
                    raise ValueError(f'Two source keys map to {new_key!r} '
                                     f'(the second is {key!r}).')
                out[new_key] = result[1]
                break
        else:
            raise ValueError(f'Unknown parameter {key!r}: no conversion '
                             f'rule matches {local!r}.')
    return out


# ---------------------------------------------------------------------------
# Swin: Microsoft / GLIP naming <-> mmdet SwinTransformer naming
# ---------------------------------------------------------------------------
SWIN_RULES = [
    KeyRule('patch_embed.proj.{p}', 'patch_embed.projection.{p}'),
    KeyRule('patch_embed.norm.{p}', 'patch_embed.norm.{p}'),
    KeyRule('layers.{i}.blocks.{j}.norm1.{p}',
            'stages.{i}.blocks.{j}.norm1.{p}'),
    KeyRule('layers.{i}.blocks.{j}.norm2.{p}',
            'stages.{i}.blocks.{j}.norm2.{p}'),
    # qkv, proj, relative_position_bias_table, relative_position_index:
    # same layout in both (the index buffers are identical, see tests)
    KeyRule('layers.{i}.blocks.{j}.attn.{rest}',
            'stages.{i}.blocks.{j}.attn.w_msa.{rest}'),
    KeyRule('layers.{i}.blocks.{j}.mlp.fc1.{p}',
            'stages.{i}.blocks.{j}.ffn.layers.0.0.{p}'),
    KeyRule('layers.{i}.blocks.{j}.mlp.fc2.{p}',
            'stages.{i}.blocks.{j}.ffn.layers.1.{p}'),
    KeyRule('layers.{i}.downsample.reduction.weight',
            'stages.{i}.downsample.reduction.weight',
            correct_unfold_reduction_order, revert_unfold_reduction_order),
    KeyRule('layers.{i}.downsample.norm.{p}', 'stages.{i}.downsample.norm.{p}',
            correct_unfold_norm_order, revert_unfold_norm_order),
    KeyRule('norm{k}.{p}', 'norm{k}.{p}'),
    KeyRule('absolute_pos_embed', 'absolute_pos_embed'),
]


def swin_official_to_mmdet(state_dict: Mapping[str, Tensor], src_prefix: str,
                           dst_prefix: str) -> 'OrderedDict[str, Tensor]':
    """Convert the Microsoft/GLIP Swin keys under ``src_prefix`` to mmdet's
    :class:`~mmdet.models.backbones.SwinTransformer` keys under
    ``dst_prefix`` (other keys are ignored).

    Raises:
        ValueError: A key under ``src_prefix`` has no known Swin name.
    """
    return _apply_rules(state_dict, SWIN_RULES, False, src_prefix, dst_prefix)


def swin_mmdet_to_official(state_dict: Mapping[str, Tensor], src_prefix: str,
                           dst_prefix: str) -> 'OrderedDict[str, Tensor]':
    """Inverse of :func:`swin_official_to_mmdet`: mmdet keys under
    ``src_prefix`` -> Microsoft/GLIP keys under ``dst_prefix``."""
    return _apply_rules(state_dict, SWIN_RULES, True, src_prefix, dst_prefix)


# ---------------------------------------------------------------------------
# Loading / saving
# ---------------------------------------------------------------------------
def load_state_dict_from_file(path: str,
                              trust_pickle: bool = False) -> StateDict:
    """Load a checkpoint file and return its flat state dict.

    The file is read with ``torch.load(weights_only=True)``; the
    ``argparse.Namespace`` that official DETR-style checkpoints store under
    ``'args'`` is allow-listed. Files needing other Python objects are only
    read with ``trust_pickle=True`` (full unpickling: trusted files only).

    Args:
        path (str): Checkpoint path.
        trust_pickle (bool): Allow full unpickling. Defaults to False.

    Returns:
        dict[str, Tensor]: ``ckpt['model']``, ``ckpt['state_dict']`` or the
        file itself when it is already a flat ``{name: tensor}`` dict.
    """
    import os.path as osp
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # UnpicklingError, or a RuntimeError wrapper
        if not trust_pickle:
            raise ValueError(
                f'{path}: cannot be read with weights_only=True ({err}). '
                'If the file comes from a source you trust, pass '
                '--trust-pickle to unpickle it fully.') from err
        ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, Mapping):
        raise ValueError(f'{path}: expected a dict, got {type(ckpt)}')
    for name in ('model', 'state_dict'):
        if name in ckpt and isinstance(ckpt[name], Mapping):
            ckpt = ckpt[name]
            break
    bad = [k for k, v in ckpt.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f'{path}: not a state dict, non-tensor entries '
                         f'{bad[:5]}')
    return OrderedDict(ckpt)


def save_converted(state_dict: Mapping[str, Tensor], dst: str,
                   meta: dict) -> None:
    """Write ``{'state_dict': ..., 'meta': meta}`` (loadable with
    ``load_from`` / ``weights_only=True``), creating the parent folder."""
    import os
    import os.path as osp
    parent = osp.dirname(osp.abspath(dst))
    os.makedirs(parent, exist_ok=True)
    torch.save(
        dict(
            state_dict=OrderedDict(
                (k, v.contiguous()) for k, v in state_dict.items()),
            meta=meta), dst)


# ---------------------------------------------------------------------------
# GLIP -> DMFormer
# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------
# DMFormer's own module names before and after they followed mmdet
# ---------------------------------------------------------------------------
#: (old, new) top-level module names: the projection to the transformer
#: levels became mmdet's ``neck``, so the old ``neck`` (the decoupled
#: interaction) had to move to ``encoder`` first
LEGACY_MODULE_NAMES = (('text_encoder', 'language_model'),
                       ('neck', 'encoder'), ('input_proj', 'neck'),
                       ('head', 'bbox_head'))
#: top-level names that only a checkpoint with the old names has
_LEGACY_ONLY = ('text_encoder', 'input_proj', 'head')


def _rename_top(key: str, pairs: Sequence[Tuple[str, str]],
                prefix: str = '') -> str:
    """Rename the first segment after ``prefix`` with the first matching
    pair (so that 'neck' -> 'encoder' and 'input_proj' -> 'neck' never
    chain)."""
    head, sep, tail = key[len(prefix):].partition('.')
    for old, new in pairs:
        if head == old:
            return prefix + new + sep + tail
    return key


def is_legacy_state_dict(keys: Iterable[str], prefix: str = '') -> bool:
    """Whether the keys (under ``prefix``) use DMFormer's old module names
    (``text_encoder``, ``input_proj``, ``neck`` for the interaction,
    ``head``): only such a checkpoint has ``text_encoder.*``,
    ``input_proj.*`` or ``head.*`` keys."""
    return any(
        key.startswith(prefix) and key[len(prefix):].partition('.')[0] in
        _LEGACY_ONLY for key in keys)


def upgrade_legacy_keys(state_dict: Dict[str, Tensor],
                        prefix: str = '') -> bool:
    """Rename, in place, the keys of a checkpoint saved with DMFormer's old
    module names to the current (mmdet) ones: ``text_encoder`` ->
    ``language_model``, ``neck`` -> ``encoder``, ``input_proj`` ->
    ``neck``, ``head`` -> ``bbox_head``. A state dict with the current
    names is left alone.

    :class:`~dmformer.models.detectors.DMFormer` calls this when it loads a
    state dict, so old checkpoints load everywhere (``load_from``,
    ``tools/test.py``, the demo, resume).

    Args:
        state_dict (dict[str, Tensor]): The state dict (its order is kept).
        prefix (str): Only keys under this prefix are renamed (the model's
            prefix inside a larger state dict). Defaults to ''.

    Returns:
        bool: Whether the keys were old-style (and renamed).
    """
    if not is_legacy_state_dict(state_dict, prefix):
        return False
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        if key.startswith(prefix):
            key = _rename_top(key, LEGACY_MODULE_NAMES, prefix)
        state_dict[key] = value
    return True


def current_to_legacy_key(key: str) -> str:
    """The old module name of a current parameter name (the inverse of
    :func:`upgrade_legacy_keys`, one key)."""
    return _rename_top(key, [(new, old)
                             for old, new in LEGACY_MODULE_NAMES[::-1]])


GLIP_FORMATS = ('official', 'mmdet')
_BERT_DROP = re.compile(r'(^|\.)(pooler\.|embeddings\.position_ids$)')


def convert_glip(state_dict: Mapping[str, Tensor], src_format: str = 'official'
                 ) -> Tuple['OrderedDict[str, Tensor]', ConversionReport]:
    """Extract DMFormer's backbone and BERT weights from a GLIP checkpoint.

    Output keys: ``backbone.*`` (:class:`GLIPSwinTransformer`, i.e. mmdet's
    Swin names) and ``language_model.bert.*`` (HF ``BertModel`` names). The
    GLIP FPN, detection head and language-backbone pooler are skipped, and
    so is BERT's ``embeddings.position_ids`` (a non-persistent buffer in
    current ``transformers``).

    Args:
        state_dict (dict[str, Tensor]): The GLIP state dict.
        src_format (str): ``'official'`` (maskrcnn_benchmark names) or
            ``'mmdet'`` (MMDetection's converted GLIP).

    Returns:
        tuple: the converted state dict and a :class:`ConversionReport`.
    """
    if src_format not in GLIP_FORMATS:
        raise ValueError(f'Unknown GLIP format {src_format!r}, expected one '
                         f'of {GLIP_FORMATS}')
    if src_format == 'official':
        vis_prefix = 'module.backbone.body.'
        lang_prefix = 'module.language_backbone.body.model.'
    else:
        vis_prefix = 'backbone.'
        lang_prefix = 'language_model.language_backbone.body.model.'
    if not any(k.startswith(vis_prefix) for k in state_dict) or not any(
            k.startswith(lang_prefix) for k in state_dict):
        found = sorted({'.'.join(k.split('.')[:2]) for k in state_dict})
        raise ValueError(
            f'Not a GLIP checkpoint in {src_format!r} format: expected keys '
            f'under {vis_prefix!r} and {lang_prefix!r}, found prefixes '
            f'{found[:10]}')

    report = ConversionReport()
    if src_format == 'official':
        out = swin_official_to_mmdet(state_dict, vis_prefix, 'backbone.')
    else:
        out = OrderedDict((k, v) for k, v in state_dict.items()
                          if k.startswith(vis_prefix))
    for key, value in state_dict.items():
        if key.startswith(vis_prefix):
            continue
        if key.startswith(lang_prefix):
            local = key[len(lang_prefix):]
            if _BERT_DROP.search(local):
                report.skip('BERT pooler / position_ids buffer, not used',
                            key)
                continue
            out['language_model.bert.' + local] = value
        else:
            report.skip('not part of DMFormer (GLIP FPN, head, ...)', key)
    report.num_converted = len(out)
    return out, report


# ---------------------------------------------------------------------------
# Official DMFormer (DMMI) <-> DMFormer (mm)
# ---------------------------------------------------------------------------
def _branch_rules(name: str) -> List[KeyRule]:
    """Rules of one interaction branch."""
    dst = f'neck.{name}_branch.'
    return [
        KeyRule(f'vlfuse_list_{name}.{{i}}.multihead_attn.{{rest}}',
                dst + 'vl_fusions.{i}.multihead_attn.{rest}'),
        # Deformable-DETR encoder layer -> mmdet encoder layer
        KeyRule(f'visionlayer_list_{name}.{{i}}.self_attn.{{rest}}',
                dst + 'encoder_layers.{i}.self_attn.{rest}'),
        KeyRule(f'visionlayer_list_{name}.{{i}}.norm1.{{p}}',
                dst + 'encoder_layers.{i}.norms.0.{p}'),
        KeyRule(f'visionlayer_list_{name}.{{i}}.linear1.{{p}}',
                dst + 'encoder_layers.{i}.ffn.layers.0.0.{p}'),
        KeyRule(f'visionlayer_list_{name}.{{i}}.linear2.{{p}}',
                dst + 'encoder_layers.{i}.ffn.layers.1.{p}'),
        KeyRule(f'visionlayer_list_{name}.{{i}}.norm2.{{p}}',
                dst + 'encoder_layers.{i}.norms.1.{p}'),
        KeyRule(f'bertlayer_list_{name}.{{i}}.{{rest}}',
                dst + 'text_layers.{i}.{rest}'),
        KeyRule(f'level_embed_{name}', dst + 'level_embed'),
        KeyRule(f'resizer_{name}_v.{{rest}}', dst + 'vision_resizer.{rest}'),
        KeyRule(f'resizer_{name}_l.{{rest}}', dst + 'text_resizer.{rest}'),
    ]


def _build_dmformer_rules(num_backbone_outs: int = 3,
                          num_feature_levels: int = 4,
                          num_pixel_levels: int = 4) -> List[KeyRule]:
    """Official DMMI -> DMFormer rules. The index shifts of
    ``input_proj`` (extra levels) and of the pixel decoder (``adapter_1``
    is level 0) are spelled out for the official sizes."""
    rules = [
        KeyRule('text_encoder.model.{rest}', 'text_encoder.bert.{rest}'),
        KeyRule('resizer.{rest}', 'text_encoder.resizer.{rest}'),
        KeyRule('subject_perceptron_1.{rest}',
                'subject_head.encoder_layer.{rest}'),
        KeyRule('subject_perceptron_2.{p}', 'subject_head.fc_cls.{p}'),
    ]
    rules += _branch_rules('context') + _branch_rules('subject')
    for lvl in range(num_feature_levels):
        dst = f'input_proj.convs.{lvl}' if lvl < num_backbone_outs \
            else f'input_proj.extra_convs.{lvl - num_backbone_outs}'
        rules += [
            KeyRule(f'input_proj.{lvl}.0.{{p}}', dst + '.conv.{p}'),
            KeyRule(f'input_proj.{lvl}.1.{{p}}', dst + '.gn.{p}'),
        ]
    dec = 'transformer.decoder.layers.{i}.'
    head_dec = 'head.decoder.layers.{i}.'
    rules += [
        KeyRule('query_embed.weight', 'head.query_embedding.weight'),
        KeyRule('transformer.reference_points.{p}',
                'head.reference_points_fc.{p}'),
        # nn.MultiheadAttention -> mmcv MultiheadAttention(.attn)
        KeyRule(dec + 'self_attn.{rest}', head_dec + 'self_attn.attn.{rest}'),
        KeyRule(dec + 'cross_attn.{rest}', head_dec + 'cross_attn.{rest}'),
        # creation-order norms -> use-order norms (module docstring)
        KeyRule(dec + 'norm2.{p}', head_dec + 'norms.0.{p}'),
        KeyRule(dec + 'norm1.{p}', head_dec + 'norms.1.{p}'),
        KeyRule(dec + 'norm3.{p}', head_dec + 'norms.2.{p}'),
        KeyRule(dec + 'linear1.{p}', head_dec + 'ffn.layers.0.0.{p}'),
        KeyRule(dec + 'linear2.{p}', head_dec + 'ffn.layers.1.{p}'),
        KeyRule('class_embed.{i}.{p}', 'head.cls_branches.{i}.{p}'),
        KeyRule('bbox_embed.{i}.layers.{j}.{p}',
                'head.reg_branches.{i}.layers.{j}.{p}'),
        KeyRule('controller.layers.{j}.{p}',
                'head.mask_head.controller.layers.{j}.{p}'),
        KeyRule('pixel_decoder.mask_features.{p}',
                'head.pixel_decoder.mask_features.{p}'),
    ]
    pix = 'head.pixel_decoder.'
    for lvl in range(num_pixel_levels):
        stage = lvl + 1  # official modules are named from 1, fine to coarse
        blk = f'pixel_decoder.cross_attn_{stage}.'
        vl = f'{pix}vl_blocks.{lvl}.'
        rules += [
            # detectron2-style Conv2d with a .norm child
            KeyRule(f'pixel_decoder.adapter_{stage}.norm.{{p}}',
                    f'{pix}lateral_convs.{lvl}.gn.{{p}}'),
            KeyRule(f'pixel_decoder.adapter_{stage}.{{p}}',
                    f'{pix}lateral_convs.{lvl}.conv.{{p}}'),
            KeyRule(f'pixel_decoder.layer_{stage}.norm.{{p}}',
                    f'{pix}output_convs.{lvl}.gn.{{p}}'),
            KeyRule(f'pixel_decoder.layer_{stage}.{{p}}',
                    f'{pix}output_convs.{lvl}.conv.{{p}}'),
            KeyRule(blk + 'self_attn.{rest}', vl + 'self_attn.{rest}'),
            KeyRule(blk + 'multihead_attn.{rest}',
                    vl + 'cross_attn.attn.{rest}'),
            KeyRule(blk + 'linear1.{p}', vl + 'ffn.layers.0.0.{p}'),
            KeyRule(blk + 'linear2.{p}', vl + 'ffn.layers.1.{p}'),
            KeyRule(blk + 'norm1.{p}', vl + 'norms.0.{p}'),
            KeyRule(blk + 'norm2.{p}', vl + 'norms.1.{p}'),
            KeyRule(blk + 'norm3.{p}', vl + 'norms.2.{p}'),
        ]
    return rules


# the rules name the targets as DMFormer did before it followed mmdet's
# module names; the current names are one prefix rename away
DMFORMER_RULES = [
    KeyRule(rule.src, _rename_top(rule.dst, LEGACY_MODULE_NAMES),
            rule.forward_fn, rule.backward_fn)
    for rule in _build_dmformer_rules()
]
_OFFICIAL_SWIN_PREFIX = 'backbone.0.body.'
_OFFICIAL_DEC_BBOX = re.compile(r'^transformer\.decoder\.bbox_embed\.(.+)$')


def convert_dmformer_official(
    state_dict: Mapping[str, Tensor]
) -> Tuple['OrderedDict[str, Tensor]', ConversionReport]:
    """Convert an official DMFormer (``DMMI``) state dict to DMFormer names.

    ``transformer.decoder.bbox_embed.*`` are the same modules as
    ``bbox_embed.*`` (box refinement shares them); they are checked to be
    equal and dropped. BERT's ``position_ids`` buffer is dropped. Any other
    key without a rule raises an error.

    NOTE: validated on synthetic round trips only (official-style state
    dicts built from a randomly initialised DMFormer with the inverse
    mapping, names checked against the official code); no official
    checkpoint was available offline.

    Args:
        state_dict (dict[str, Tensor]): ``checkpoint['model']``.

    Returns:
        tuple: the converted state dict and a :class:`ConversionReport`.
    """
    report = ConversionReport()
    out = swin_official_to_mmdet(state_dict, _OFFICIAL_SWIN_PREFIX,
                                 'backbone.')
    rest = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(_OFFICIAL_SWIN_PREFIX):
            continue
        dup = _OFFICIAL_DEC_BBOX.match(key)
        if dup is not None:
            shared = state_dict.get('bbox_embed.' + dup.group(1))
            if shared is None or shared.shape != value.shape or \
                    not torch.equal(shared, value):
                raise ValueError(
                    f'{key} should equal bbox_embed.{dup.group(1)} (the '
                    'official decoder shares the box heads).')
            report.skip('duplicate of bbox_embed.* (shared module)', key)
            continue
        if key.startswith('text_encoder.model.') and \
                _BERT_DROP.search(key):
            report.skip('BERT pooler / position_ids buffer, not used', key)
            continue
        rest[key] = value
    converted = _apply_rules(rest, DMFORMER_RULES, False, '', '')
    for key, value in converted.items():
        if key in out:
            raise ValueError(f'Two source keys map to {key!r}')
        out[key] = value
    report.num_converted = len(out)
    return out, report


def dmformer_mm_to_official(
        state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Inverse of :func:`convert_dmformer_official` (without the dropped
    duplicates): DMFormer names -> official ``DMMI`` names. Used to build
    official-style state dicts for validation."""
    out = swin_mmdet_to_official(state_dict, 'backbone.',
                                 _OFFICIAL_SWIN_PREFIX)
    rest = OrderedDict(
        (k, v) for k, v in state_dict.items() if not k.startswith('backbone.'))
    out.update(_apply_rules(rest, DMFORMER_RULES, True, '', ''))
    return out


# ---------------------------------------------------------------------------
# Key check against a model
# ---------------------------------------------------------------------------
@dataclass
class KeyCheckResult:
    """Comparison of a state dict with a model's ``state_dict()``.

    Attributes:
        missing (list[str]): Model keys absent from the state dict and not
            covered by an allowed prefix.
        allowed_missing (list[str]): Missing keys under an allowed prefix.
        unexpected (list[str]): State-dict keys the model does not have.
        mismatched (list[tuple[str, tuple, tuple]]): ``(key, ckpt shape,
            model shape)`` of keys present in both with different shapes.
        matched (int): Keys present in both with equal shapes.
    """
    missing: List[str] = field(default_factory=list)
    allowed_missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    matched: int = 0

    @property
    def ok(self) -> bool:
        """No unexpected, mismatched or disallowed missing key."""
        return not (self.missing or self.unexpected or self.mismatched)

    @staticmethod
    def _group(keys: Iterable[str]) -> Dict[str, int]:
        counts: Dict[str, int] = defaultdict(int)
        for key in keys:
            counts[key.split('.')[0]] += 1
        return dict(sorted(counts.items()))

    def format(self, max_keys: int = 20) -> str:
        """A report grouped by top-level module (counts) with up to
        ``max_keys`` example keys per category."""
        lines = [f'matched keys: {self.matched}']

        def block(title: str, keys: List[str]) -> None:
            lines.append(f'{title}: {len(keys)}')
            for group, count in self._group(keys).items():
                lines.append(f'    {group:<20}{count:>8}')
            for key in keys[:max_keys]:
                lines.append(f'      - {key}')
            if len(keys) > max_keys:
                lines.append(f'      ... {len(keys) - max_keys} more')

        block('missing keys (allowed)', self.allowed_missing)
        block('missing keys (NOT allowed)', self.missing)
        block('unexpected keys', self.unexpected)
        lines.append(f'shape mismatches: {len(self.mismatched)}')
        for key, src, dst in self.mismatched[:max_keys]:
            lines.append(f'      - {key}: checkpoint {src} vs model {dst}')
        lines.append('OK' if self.ok else 'FAILED')
        return '\n'.join(lines)


def check_state_dict(model: nn.Module,
                     state_dict: Mapping[str, Tensor],
                     allow_missing: Sequence[str] = ()) -> KeyCheckResult:
    """Compare ``state_dict`` with ``model.state_dict()``.

    Args:
        model (nn.Module): The model.
        state_dict (dict[str, Tensor]): Checkpoint state dict (already
            revised, e.g. without a ``module.`` prefix); old module names
            are compared as the current ones (:func:`upgrade_legacy_keys`).
        allow_missing (Sequence[str]): Key prefixes whose absence is fine
            (e.g. ``'encoder.'`` for a backbone-only checkpoint). A prefix
            matches whole name segments: ``'bbox_head'`` covers
            ``bbox_head.x`` but not ``bbox_heads.x``.

    Returns:
        :class:`KeyCheckResult`.
    """
    prefixes = [p.rstrip('.') for p in allow_missing]
    # keys with the old module names: DMFormer renames them when loading
    state_dict = OrderedDict(state_dict)
    upgrade_legacy_keys(state_dict)

    def allowed(key: str) -> bool:
        return any(key == p or key.startswith(p + '.') for p in prefixes)

    own = model.state_dict()
    result = KeyCheckResult()
    for key, value in own.items():
        if key not in state_dict:
            (result.allowed_missing
             if allowed(key) else result.missing).append(key)
        elif tuple(state_dict[key].shape) != tuple(value.shape):
            result.mismatched.append(
                (key, tuple(state_dict[key].shape), tuple(value.shape)))
        else:
            result.matched += 1
    result.unexpected = [k for k in state_dict if k not in own]
    return result


def describe_checkpoint_mismatch(model: nn.Module,
                                 state_dict: Mapping[str, Tensor]) -> str:
    """One line on why ``state_dict`` is not the weights of ``model``.

    Missing parameters, parameters of another shape and keys the model
    does not have are counted with a few names each, and the converters
    for official / GLIP weights are named.

    Args:
        model (nn.Module): The model (not wrapped).
        state_dict (dict[str, Tensor]): Checkpoint state dict; a
            ``module.`` prefix (DDP) is removed.

    Returns:
        str: ``''`` when every key matches, else the description.
    """
    state_dict = {(k[len('module.'):] if k.startswith('module.') else k): v
                  for k, v in state_dict.items()}
    result = check_state_dict(model, state_dict)
    parts = []
    if result.missing:
        parts.append(f'{len(result.missing)} of the model\'s parameters are '
                     f'missing (e.g. {", ".join(result.missing[:3])})')
    if result.mismatched:
        key, got, want = result.mismatched[0]
        parts.append(f'{len(result.mismatched)} have another shape (e.g. '
                     f'{key}: {got} in the file, {want} in the model)')
    if result.unexpected:
        parts.append(f'{len(result.unexpected)} keys are not in the model '
                     f'(e.g. {", ".join(result.unexpected[:3])})')
    if not parts:
        return ''
    return '; '.join(parts) + (
        '. Official DMFormer / GLIP weights must be converted first '
        '(tools/model_converters/dmformer_official_to_mm.py, '
        'glip_to_dmformer.py)')


def build_model_from_config(config: str,
                            cfg_options: Optional[dict] = None
                            ) -> nn.Module:
    """Build (without loading anything) the model of a DMFormer config, for
    key checks.

    Args:
        config (str): Config file.
        cfg_options (dict, optional): Options merged into the config.

    Returns:
        nn.Module: The model, with its initial weights.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from dmformer.registry import MODELS
    from dmformer.utils import register_all_modules
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'dmformer'))
    return MODELS.build(cfg.model)
