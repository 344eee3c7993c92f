# Copyright (c) OpenMMLab. All rights reserved.
"""Compare one DMFormer training step with the official code (``DMMI``).

The training counterpart of ``compare_official.py`` (whose checks, stand-ins
and patches of the official environment it reuses; see that module's
docstring for the list). Both models are built as there, from the same
weights (the official state dict, its seeded initialisation, ``--fill-
weights`` or ``--checkpoint``, converted with
:func:`dmformer.models.utils.ckpt_convert.convert_dmformer_official` and
loaded strictly into ours), and then, in **float64** (``Module.double()``
and ``torch.set_default_dtype(torch.float64)`` while they run, as some
official tensors are created with the default dtype):

- both run in training mode with every dropout off: ``p = 0`` in every
  ``nn.Dropout``, and every float module attribute whose name contains
  ``drop`` (``nn.MultiheadAttention.dropout``, ``DropPath.drop_prob``, the
  HF attention's ``dropout_prob``) set to 0, which the tool checks
  afterwards. Our frozen Swin/BERT stay in eval mode (the config's
  ``frozen_eval``); the official ones run in training mode, as in its
  ``engine.py``, which without dropout and drop-path computes the same;
- the batch is two clips of different sizes (``--shapes``, default 96x128
  and 128x96, ``--num-frames`` each), seeded frames normalised with the
  ImageNet mean/std in float64 and padded to a multiple of 32 as the
  official ``collate_fn`` does (``nested_tensor_from_videos_list``); ours
  gets the same padded tensor (after a check that our data preprocessor
  gives the same float32 values and padding) with the samples, metainfo
  and padded GT masks of our preprocessor in training mode. The referred
  object is absent from the last frame of the first clip (empty mask,
  ``valid`` 0, zero box). GT boxes are the same numbers on both sides
  (pixel corners chosen so that the normalisation is exact in float32,
  where both codes normalise them), so the box convention of the data
  pipelines is not part of this comparison;
- the captions (``--texts``) have their subject (``--subjects``) in a noun
  chunk that is not the first one; both models get the same subject labels:
  ours as ``gt_subject_span`` (characters), the official criterion as the
  ``pseudo_labels`` its GLIP teacher would give (``util/glip_labels.py``:
  the tokens of that noun chunk of the official positive map set to 1,
  one label per valid token);
- official training path: ``models.dmmi.build`` with the README's
  fine-tuning flags that exist in ``opts.py`` (``--use_glip --backbone
  swin_t_p4w7 --binary --with_box_refine --freeze_text_encoder
  --freeze_backbone``: the README's ``--freeze_vision_encoder`` and
  ``--use_rmhca`` are not ``opts.py`` arguments, and RMHCA is off in the
  released model and in our config), its ``SetCriterion`` and
  ``HungarianMatcher`` with their weight dict and aux losses, the total
  loss as ``engine.py`` sums it, ``clip_grad_norm_(max_norm=0.1)`` and
  AdamW with the parameter groups of ``main.py``. The deformable
  attention, whose compiled extension has no CPU code, runs the official
  PyTorch core ``ms_deform_attn_core_pytorch`` with autograd
  (``MSDeformAttnFunction.apply`` calls it directly instead of the
  extension);
- our training path: ``model.loss`` in training mode (mmcv's deformable
  attention PyTorch path, the unchunked pixel-decoder blocks),
  ``parse_losses``, and the optimizer wrapper of the config's
  ``optim_wrapper`` built with mmengine's ``build_optim_wrapper``
  (``backward``, then ``step``: gradient clipping and AdamW).

The table has a row per loss term of every decoder layer (official
``loss_ce/bbox/giou/mask/dice`` with ``_0.._2`` for the aux layers vs our
``[d{l}.]loss_cls/bbox/iou/mask/dice``, both weighted), the matched query
of every layer and clip, the subject loss, the total loss, the gradient of
every trainable tensor (official names mapped through the converter;
summarised per module in the table, the worst tensors listed, all of them
compared), the clipped gradient norm, the learning rate and weight decay of
every trainable tensor, the AdamW update of every tensor and the parameters
after the step; a few forward rows (last-layer outputs, subject logits,
noun chunks, chosen subject) locate a difference. A row's difference is
``max |ours - official|`` and, relative, that over ``max |official|``,
per tensor for the summary rows (their largest). Gradients are taken
relative to at least ``--grad-floor`` times the largest official gradient
(gradients that are zero up to rounding, such as those of attention key
biases, would otherwise count); AdamW updates relative to the largest
official update (Adam moves every element by at most about the learning
rate).

Two documented fixes of ours (docs/en/advanced_guides/parity.md,
"Fixes relative to the official code") change every training number and
are therefore neutralised on the official side, so that the rest is
compared strictly; each has its own
``fix`` rows showing the official value as is:

- *the subject loss is averaged over the batch, not summed*: the official
  total loss used for the gradients is the official one with its
  ``subject`` term divided by the batch size (rows ``... (official as
  is)`` compare the summed version: loss, total, gradients, norm);
- *padding masks have one polarity per API*: the official sine positions
  of the words (``PositionEmbeddingSine1D``) get the HF 1/0 attention mask
  as their padding mask, so ``~mask`` is -2/-1 and the normalisation runs
  as ``x / (x_last - eps / 2)`` instead of ``x / (x_last + eps)`` (a
  relative shift of about 1.5e-6 / L, invisible in float32, visible in
  float64). A forward pre-hook gives those modules the bool padding mask
  (True = padding); the row ``word positions (official as is)`` shows the
  difference.

Fixes that only act on other inputs are detected and mark the rows they
change ``fix`` (as in ``compare_official.py``): captions of different token
lengths (the official integer masks let the shorter caption's padding into
the attention), a chosen subject shorter than the padded span, and words
that BERT splits before a noun chunk. The default captions trigger none.

Rows fed by our subject loss, which casts the logits to float32
(``SubjectTokenLoss``: ``logits.float()``), are compared at ``--fp32-tol``;
their note says so. Everything else must agree to ``--tol``.

The GIoU formula is a documented fix: the official GIoU
(``util/box_ops.py:56,81``, in the loss and the matching cost) smooths
``(inter + 1e-6) / (union + 1e-6)`` and ``(area - union + 1e-6) / (area +
1e-6)``, ours (mmdet ``GIoULoss`` / ``bbox_overlaps``) divides by
``max(union, 1e-6)`` and ``max(area, 1e-6)``, so an absent frame's zero
GT box has an IoU of 0 instead of about ``1e-6 / area``. By default
(``--official-iou fix``) the official step runs twice: as it is, for the
``loss_giou`` rows marked ``fix`` (about 1e-5 relative with the default
batch), and with the mmdet formula in its criterion and matcher, for every
other row, which must then agree strictly (the box-head gradients differ
by about 3e-5 relative with the official formula, which Adam turns into
updates up to about 6% apart in a few box-head elements).
``--official-iou official`` compares the official step as it is in every
row (the GIoU rows then read ``DIFF``), ``--official-iou mmdet`` only the
neutralised step.

Example::

    python tools/analysis_tools/compare_official_train.py /tmp/official \\
        --num-frames 2 --seed 0 --json work_dirs/compare_official_train.json
"""
import argparse
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import os.path as osp
import re
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn


def _load_compare_official():
    """``compare_official.py`` of this folder (the official environment,
    the checks and the table)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'compare_official.py')
    spec = importlib.util.spec_from_file_location('_dmformer_compare_official',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


co = _load_compare_official()
CompareError = co.CompareError

DEFAULT_CONFIG = co.DEFAULT_CONFIG
#: both 9 tokens, every noun chunk 2 tokens, the subject in the 2nd chunk
DEFAULT_TEXTS = ('behind the fence a horse is running',
                 'near the car the man is walking')
DEFAULT_SUBJECTS = ('a horse', 'the man')
#: (H, W) of the two clips
DEFAULT_SHAPES = (96, 128, 128, 96)
#: official build flags added for training (opts.py name of the README's
#: --freeze_vision_encoder)
OFFICIAL_TRAIN_ARGV = ('--freeze_backbone', )
#: official SetCriterion names -> ours (last layer; aux layers get _<l>)
LOSS_NAMES = {
    'loss_ce': 'loss_cls',
    'loss_bbox': 'loss_bbox',
    'loss_giou': 'loss_iou',
    'loss_mask': 'loss_mask',
    'loss_dice': 'loss_dice',
}
_OFFICIAL_LOSS = re.compile(r'^(loss_[a-z]+)(?:_(\d+))?$')
#: module prefixes of the gradient summary (our names, first components)
_GROUP_DEPTH = 2
FIX_SUBJECT_LOSS = ('fix: the official criterion sums the subject loss over '
                    'the clips of a batch, ours averages it (parity.md); the '
                    'other rows use the official loss with its subject term '
                    'divided by the batch size')
FIX_TEXT_POS = ('fix: the official word positions get the HF 1/0 attention '
                'mask as padding mask (~mask = -2/-1, eps acts as -eps/2); '
                'ours a bool mask (parity.md: one mask polarity per API); the '
                'other rows give the official modules the bool mask')
FIX_PADDING = ('fix: captions of different token lengths: the official '
               'integer attention masks let the shorter caption\'s padding '
               'into the attention (added to the logits), ours masks it '
               '(parity.md: one mask polarity per API)')
GIOU_HINT = ('official util/box_ops.py:56,81 smooths the IoU, (inter + '
             '1e-6) / (union + 1e-6), and the GIoU term, (area - union + '
             '1e-6) / (area + 1e-6); ours (mmdet bbox_overlaps, '
             'GIoULoss) divides by max(union, 1e-6) and max(area, 1e-6)')
FIX_GIOU = ('fix: ' + GIOU_HINT + ': a zero (absent-object) GT box has IoU '
            '0, not 1e-6 / area; the other rows give the official criterion '
            'and matcher the mmdet formula')
FP32_NOTE = ('within --fp32-tol: ours computes the subject cross-entropy in '
             'float32 (SubjectTokenLoss casts the logits with .float())')


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------
def official_loss_to_ours(name: str, num_layers: int = 4) -> str:
    """Our loss key of an official ``SetCriterion`` loss name.

    Args:
        name (str): e.g. ``'loss_ce'`` (last decoder layer),
            ``'loss_giou_1'`` (aux layer 1) or ``'subject'``.
        num_layers (int): Decoder layers. Defaults to 4.

    Returns:
        str: e.g. ``'loss_cls'``, ``'d1.loss_iou'`` or ``'loss_subject'``.

    Raises:
        CompareError: An unknown name or an aux index out of range.
    """
    if name == 'subject':
        return 'loss_subject'
    match = _OFFICIAL_LOSS.match(name)
    if match is None or match.group(1) not in LOSS_NAMES:
        raise CompareError(f'unknown official loss name {name!r}')
    ours = LOSS_NAMES[match.group(1)]
    if match.group(2) is None:
        return ours
    layer = int(match.group(2))
    if layer >= num_layers - 1:
        raise CompareError(f'official loss {name!r}: aux layer {layer} out '
                           f'of range for {num_layers} decoder layers')
    return f'd{layer}.{ours}'


def group_name(name: str, depth: int = _GROUP_DEPTH) -> str:
    """Module prefix of a parameter name for the summary rows."""
    return '.'.join(name.split('.')[:depth])


# ---------------------------------------------------------------------------
# Dropout, dtype, deformable attention with autograd
# ---------------------------------------------------------------------------
def disable_dropout(model: nn.Module) -> int:
    """Switch off every dropout and drop-path of ``model`` in place.

    ``p = 0`` in every ``nn.Dropout*``, and 0 in every float attribute of
    a module whose name contains ``drop`` (``nn.MultiheadAttention.
    dropout``, ``DropPath.drop_prob``, HF ``dropout_prob``).

    Returns:
        int: The number of values set to 0 (that were not 0 already).
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p:
            module.p = 0.
            count += 1
        for attr, value in list(vars(module).items()):
            if 'drop' in attr.lower() and isinstance(value, float) \
                    and value != 0.:
                setattr(module, attr, 0.)
                count += 1
    return count


def active_dropout(model: nn.Module) -> List[str]:
    """Names of the modules of ``model`` that can still drop anything
    (see :func:`disable_dropout`)."""
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p:
            names.append(name)
        elif any('drop' in attr.lower() and isinstance(value, float)
                 and value != 0. for attr, value in vars(module).items()):
            names.append(name)
    return names


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """``torch.set_default_dtype`` for the block (restored after)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _msda_apply_with_autograd(core):
    """``MSDeformAttnFunction.apply`` computed by the official PyTorch core
    (differentiable by autograd) instead of the compiled extension."""

    def apply(value, spatial_shapes, level_start_index, sampling_locations,
              attention_weights, im2col_step):
        return core(value, spatial_shapes, sampling_locations,
                    attention_weights)

    return staticmethod(apply)


def _typed_key_padding_mask(module, args, kwargs):
    """Forward pre-hook of the official ``nn.MultiheadAttention``: an
    integer ``key_padding_mask`` is added to the logits, as PyTorch 1.x did
    (as ``compare_official._float_key_padding_mask``, in the dtype of the
    query so that float64 runs)."""
    mask = kwargs.get('key_padding_mask')
    if mask is not None and not mask.is_floating_point() \
            and mask.dtype != torch.bool:
        query = kwargs.get('query', args[0] if args else None)
        return args, dict(kwargs, key_padding_mask=mask.to(query.dtype))
    return None


def mmdet_style_giou(boxes1: torch.Tensor,
                     boxes2: torch.Tensor,
                     eps: float = 1e-6) -> torch.Tensor:
    """Pairwise GIoU (N, M) of xyxy boxes as mmdet's ``bbox_overlaps``
    (``mode='giou'``) computes it: IoU = inter / max(union, eps), enclosing
    area clamped at eps. Stands in for the official
    ``generalized_box_iou`` with ``--official-iou mmdet`` (diagnosis)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = (area1[:, None] + area2[None] - inter).clamp(min=eps)
    lt = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    enclose = (wh[..., 0] * wh[..., 1]).clamp(min=eps)
    return inter / union - (enclose - union) / enclose


def _bool_text_pad_mask(module, args):
    """Forward pre-hook of the official ``PositionEmbeddingSine1D``: the
    HF 1/0 attention mask becomes the bool padding mask (True = padding)
    that ``~mask`` expects (neutralises FIX_TEXT_POS)."""
    nested = args[0]
    mask = nested.mask
    if mask is not None and mask.dtype != torch.bool:
        return (type(nested)(nested.tensors, mask == 0), ) + tuple(args[1:])
    return None


# ---------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------
def make_batch(num_frames: int, shapes: Sequence[Tuple[int, int]],
               texts: Sequence[str], subjects: Sequence[str],
               seed: int) -> Dict:
    """Two (or more) clips with their GT, the same for both models.

    Every clip gets seeded frames (``compare_official.make_clip``), an
    elliptic object inside a box whose corners are multiples of 6 pixels
    (exact in float32 after the division by the image size) that moves by
    6 pixels per frame, and the first clip loses the object in its last
    frame (``valid`` 0).

    Returns:
        dict: ``frames`` (uint8 RGB (T, 3, H, W) per clip), ``inputs``
        (float64 normalised, per clip), ``masks`` (bool (T, H, W)),
        ``boxes`` (float64 (T, 4) xyxy pixels, zeros where absent),
        ``valid`` (bool (T,)), ``texts`` and ``subject_spans`` (character
        spans).

    Raises:
        CompareError: A subject that is not in its caption, a clip too
            small for the object or of a size whose normalised boxes are
            not exact in float32.
    """
    if not (len(shapes) == len(texts) == len(subjects)):
        raise CompareError(f'{len(shapes)} clip shapes, {len(texts)} texts '
                           f'and {len(subjects)} subjects: give one each')
    mean = torch.tensor(co.MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(co.STD, dtype=torch.float64).view(1, 3, 1, 1)
    batch = dict(
        frames=[],
        inputs=[],
        masks=[],
        boxes=[],
        valid=[],
        texts=list(texts),
        subject_spans=[])
    for i, ((h, w), text, subject) in enumerate(zip(shapes, texts, subjects)):
        start = text.find(subject)
        if not subject or start < 0:
            raise CompareError(f'subject {subject!r} is not in caption '
                               f'{i} {text!r}')
        batch['subject_spans'].append((start, start + len(subject)))
        frames = co.make_clip(num_frames, (h, w), seed + i)
        batch['frames'].append(frames)
        batch['inputs'].append((frames.double() / 255. - mean) / std)
        # box: about half the image, corners on multiples of 6
        bw, bh = (w // 2) // 6 * 6, (h // 2) // 6 * 6
        if bw < 12 or bh < 12:
            raise CompareError(f'clip {i} of {h}x{w} is too small (at '
                               'least 32x32)')
        masks = torch.zeros((num_frames, h, w), dtype=torch.bool)
        boxes = torch.zeros((num_frames, 4), dtype=torch.float64)
        valid = torch.ones(num_frames, dtype=torch.bool)
        ys = torch.arange(h, dtype=torch.float64)[:, None] + 0.5
        xs = torch.arange(w, dtype=torch.float64)[None] + 0.5
        for t in range(num_frames):
            if i == 0 and t == num_frames - 1 and num_frames > 1:
                valid[t] = False  # the referent has left the frame
                continue
            x1 = min(6 * (t + 1), w - bw) // 6 * 6
            y1 = min(6 * (i + 1), h - bh) // 6 * 6
            boxes[t] = torch.tensor([x1, y1, x1 + bw, y1 + bh])
            cx, cy = x1 + bw / 2, y1 + bh / 2
            masks[t] = ((xs - cx) / (bw / 2))**2 + ((ys - cy) /
                                                    (bh / 2))**2 <= 1
        norm = xyxy_to_normalized_cxcywh(boxes, h, w)
        if not torch.equal(norm.float().double(), norm):
            # both codes normalise in float32, in different orders
            raise CompareError(
                f'clip {i} of {h}x{w}: its GT boxes are not exact in '
                'float32 once normalised; use sizes of the form 2^k or '
                '3 x 2^k (e.g. 64, 96, 128, 192)')
        batch['masks'].append(masks)
        batch['boxes'].append(boxes)
        batch['valid'].append(valid)
    return batch


def xyxy_to_normalized_cxcywh(boxes: torch.Tensor, h: int,
                              w: int) -> torch.Tensor:
    """The official ``Normalize`` of a target: cxcywh pixels / (w, h)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    cxcywh = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
    return cxcywh / cxcywh.new_tensor([w, h, w, h])


# ---------------------------------------------------------------------------
# Official side
# ---------------------------------------------------------------------------
def official_param_groups(model: nn.Module,
                          args: argparse.Namespace) -> List[Dict]:
    """The AdamW parameter groups of the official ``main.py`` (lines
    69-89): base lr; ``lr_backbone`` for ``backbone.0``; ``lr_text_encoder``
    for ``text_encoder``; ``lr * lr_linear_proj_mult`` for
    ``reference_points`` / ``sampling_offsets``; trainable tensors only."""

    def match(name, keywords):
        return any(k in name for k in keywords)

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    special = (
        args.lr_backbone_names + args.lr_text_encoder_names +
        args.lr_linear_proj_names)
    return [
        dict(
            params=[p for n, p in named if not match(n, special)], lr=args.lr),
        dict(
            params=[p for n, p in named if match(n, args.lr_backbone_names)],
            lr=args.lr_backbone),
        dict(
            params=[
                p for n, p in named if match(n, args.lr_text_encoder_names)
            ],
            lr=args.lr_text_encoder),
        dict(
            params=[
                p for n, p in named if match(n, args.lr_linear_proj_names)
            ],
            lr=args.lr * args.lr_linear_proj_mult),
    ]


def build_official_train(args: argparse.Namespace):
    """Build the official model, criterion and optimizer arguments (inside
    ``official_environment``), with the weights of ``args``.

    Returns:
        tuple: model (float64, training mode, no dropout), criterion,
        the official ``opts`` namespace and its state dict before training.
    """
    dmmi = importlib.import_module('models.dmmi')
    torch.manual_seed(args.seed)
    opts = co.official_args(OFFICIAL_TRAIN_ARGV)
    model, criterion, _ = dmmi.build(opts)
    if args.fill_weights and args.checkpoint is None:
        from dmformer.testing import seeded_parameters
        seeded_parameters(model)
    co.load_official_state(args.checkpoint, model, args.trust_pickle)
    model.double()
    criterion.double()
    model.train()
    criterion.train()
    disable_dropout(model)
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            module.register_forward_pre_hook(
                _typed_key_padding_mask, with_kwargs=True)
        if type(module).__name__ == 'PositionEmbeddingSine1D':
            module.register_forward_pre_hook(_bool_text_pad_mask)
    # a copy: the step below changes the parameters in place
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model, criterion, opts, state


def official_pseudo_label(positive_map: Dict[int, List[int]], chunk_index: int,
                          num_tokens: int) -> torch.Tensor:
    """The subject label the official GLIP teacher path gives
    (``util/glip_labels.py:81``): zeros over the caption's valid tokens,
    ones over the tokens of noun chunk ``chunk_index`` (1-based) of the
    positive map; shape (1, num_tokens) as ``engine.py`` collects it."""
    label = torch.zeros(num_tokens, dtype=torch.long)
    tokens = positive_map[chunk_index]
    label[tokens[0]:tokens[-1] + 1] = 1
    return label[None]


def run_official(args: argparse.Namespace, batch: Dict) -> Dict:
    """One official training step on ``batch`` (inside the official
    environment); returns what the comparison reads."""
    nlp = importlib.import_module('models.dmmi').nlp
    misc = importlib.import_module('util.misc')
    func = importlib.import_module('models.ops.functions.ms_deform_attn_func')
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            co._patched(
                func.MSDeformAttnFunction, 'apply',
                _msda_apply_with_autograd(func.ms_deform_attn_core_pytorch)))
        if args.official_iou != 'official':
            for name in ('util.box_ops', 'models.matcher'):
                stack.enter_context(
                    co._patched(
                        importlib.import_module(name), 'generalized_box_iou',
                        mmdet_style_giou))
        model, criterion, opts, state = build_official_train(args)
        res = dict(state=state, active_dropout=active_dropout(model))
        with default_dtype(torch.float64):
            res.update(
                _official_step(model, criterion, opts, batch, nlp, misc))
    return res


def _official_step(model, criterion, opts, batch, nlp, misc) -> Dict:
    texts = batch['texts']
    b = len(texts)
    # chunks and the subject's chunk index of every caption
    chunks = [co.official_noun_chunks(nlp, text) for text in texts]
    tokenized = model.tokenizer(texts, padding='longest')
    num_tokens = [sum(m) for m in tokenized['attention_mask']]
    with torch.no_grad():
        _, _, positive_maps = model.forward_text(texts, device='cpu')
    labels = []
    for i, (span, cands) in enumerate(zip(batch['subject_spans'], chunks)):
        if tuple(span) not in cands:
            raise CompareError(
                f'subject {texts[i][span[0]:span[1]]!r} is not a noun chunk '
                f'of {texts[i]!r} (spaCy chunks: '
                f'{[texts[i][s:e] for s, e in cands]})')
        index = cands.index(tuple(span)) + 1
        if index not in positive_maps[i]:
            raise CompareError(f'the official code maps no token to noun '
                               f'chunk {index} of {texts[i]!r}')
        labels.append(
            official_pseudo_label(positive_maps[i], index, num_tokens[i]))
    # the collated batch (collate_fn) and the targets (ytvos.py + Normalize)
    samples = misc.nested_tensor_from_videos_list(
        [x.clone() for x in batch['inputs']], size_divisibility=32)
    padded = samples.tensors.clone()
    pad_mask = samples.mask.clone()
    targets = []
    for i, (x, masks, boxes, valid) in enumerate(
            zip(batch['inputs'], batch['masks'], batch['boxes'],
                batch['valid'])):
        h, w = x.shape[-2:]
        targets.append(
            dict(
                labels=torch.zeros(len(valid), dtype=torch.long),
                boxes=xyxy_to_normalized_cxcywh(boxes, h, w),
                masks=masks.double(),
                valid=valid.long(),
                caption=texts[i],
                orig_size=torch.as_tensor([h, w]),
                size=torch.as_tensor([h, w])))
    matched = []
    handle = criterion.matcher.register_forward_hook(
        lambda mod, inp, out: matched.append([int(s) for s, _ in out]))
    try:
        outputs = model(samples, texts, targets)
        loss_dict = criterion(outputs, targets, labels)
    finally:
        handle.remove()
    weight_dict = criterion.weight_dict
    weighted = {
        k: v * weight_dict[k]
        for k, v in loss_dict.items() if k in weight_dict
    }
    total = sum(weighted.values())
    # FIX_SUBJECT_LOSS neutralised: the subject term averaged over clips
    total_mean_subject = total - (1 - 1 / b) * weighted['subject']
    named = [(n, p) for n, p in model.named_parameters(remove_duplicate=False)
             if p.requires_grad]
    params = list(dict((id(p), p) for _, p in named).values())
    subject_grads = torch.autograd.grad(
        weighted['subject'], params, retain_graph=True, allow_unused=True)
    optimizer = torch.optim.AdamW(
        official_param_groups(model, opts),
        lr=opts.lr,
        weight_decay=opts.weight_decay)
    hyper = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            hyper[id(p)] = (group['lr'], group['weight_decay'])
    before = {id(p): p.detach().clone() for p in params}
    optimizer.zero_grad()
    total_mean_subject.backward()
    grads = {
        id(p): p.grad.detach().clone()
        for p in params if p.grad is not None
    }
    # the gradient as is (summed subject loss) for the FIX_SUBJECT_LOSS row
    grads_as_is = dict(grads)
    for p, g in zip(params, subject_grads):
        if g is not None:
            grads_as_is[id(p)] = grads_as_is[id(p)] + (1 - 1 / b) * g
    norm_as_is = torch.linalg.vector_norm(
        torch.stack(
            [torch.linalg.vector_norm(g) for g in grads_as_is.values()]))
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                               opts.clip_max_norm)
    optimizer.step()
    after = {id(p): p.detach().clone() for p in params}

    def by_name(values):
        return {n: values[id(p)] for n, p in named if id(p) in values}

    res = dict(
        texts=texts,
        chunks=chunks,
        positive_maps=positive_maps,
        labels=labels,
        padded=padded,
        pad_mask=pad_mask,
        outputs=_detach(outputs),
        matched=matched,
        losses={
            k: v.detach()
            for k, v in weighted.items()
        },
        total=total.detach(),
        total_mean_subject=total_mean_subject.detach(),
        grads=by_name(grads),
        grads_as_is=by_name(grads_as_is),
        grad_norm=grad_norm.detach(),
        grad_norm_as_is=norm_as_is.detach(),
        hyper=by_name(hyper),
        before=by_name(before),
        after=by_name(after),
        max_norm=opts.clip_max_norm)
    # the word positions as the official code computes them (integer mask)
    nested = type(samples)
    ids = model.tokenizer(texts, padding='longest', return_tensors='pt')
    int_mask = ids['attention_mask']
    feats = torch.zeros(int_mask.shape + (1, ), dtype=torch.float64)
    res['text_pos_as_is'] = type(model.text_pos).forward(
        model.text_pos, nested(feats, int_mask)).transpose(1, 2)
    res['text_pos'] = model.text_pos(nested(feats, int_mask)).transpose(1, 2)
    res['subject_spans'] = [
        co.official_choice(outputs['subject'][i].detach(), positive_maps[i])
        for i in range(b)
    ]
    return res


def _detach(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, dict):
        return {k: _detach(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detach(v) for v in obj)
    return obj


# ---------------------------------------------------------------------------
# Our side
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_mmengine() -> Iterator[None]:
    """mmengine's current logger at ERROR level for the block."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _RecordingAssigner:
    """Wraps our head's assigner and keeps the matched query of every
    call (one call per decoder layer, layer 0 first)."""

    def __init__(self, assigner) -> None:
        self.assigner = assigner
        self.matched: List[List[int]] = []

    def __call__(self, *args, **kwargs):
        out = self.assigner(*args, **kwargs)
        self.matched.append([int(i) for i in out])
        return out


def make_our_samples(batch: Dict, noun_chunks: List[List[Tuple[int, int]]]):
    """Our training samples: text, official noun chunks, image shapes,
    GT (masks, xyxy boxes, valid, labels) and the subject span."""
    from mmengine.structures import InstanceData

    from dmformer.structures import RVOSDataSample
    samples = []
    for i, frames in enumerate(batch['frames']):
        h, w = frames.shape[-2:]
        sample = RVOSDataSample(
            metainfo=dict(
                text=batch['texts'][i],
                noun_chunks=[tuple(c) for c in noun_chunks[i]],
                img_shape=(h, w),
                ori_shape=(h, w)))
        gt = InstanceData()
        gt.masks = batch['masks'][i].clone()
        gt.bboxes = batch['boxes'][i].float()
        gt.valid = batch['valid'][i].clone()
        gt.labels = torch.zeros(len(batch['valid'][i]), dtype=torch.long)
        sample.gt_instances = gt
        sample.gt_subject_span = torch.as_tensor(
            batch['subject_spans'][i], dtype=torch.long)
        samples.append(sample)
    return samples


def run_ours(model: nn.Module, optim_cfg, batch: Dict,
             noun_chunks: List[List[Tuple[int, int]]],
             padded: torch.Tensor) -> Dict:
    """One training step of our model on ``batch`` (the official padded
    float64 inputs); returns what the comparison reads."""
    from mmengine.optim import build_optim_wrapper
    samples = make_our_samples(batch, noun_chunks)
    # our preprocessor reads BGR uint8 clips (bgr_to_rgb=True)
    data = model.data_preprocessor(
        dict(
            inputs=[f.flip(1) for f in batch['frames']], data_samples=samples),
        True)
    res = dict(preprocessed=data['inputs'])
    head = model.bbox_head
    recorder = _RecordingAssigner(head.assigner)
    with _quiet_mmengine():  # one warning per frozen tensor otherwise
        optim_wrapper = build_optim_wrapper(model, optim_cfg)
    head.assigner = recorder
    try:
        with default_dtype(torch.float64):
            model.train()
            res['active_dropout'] = active_dropout(model)
            rec = co.Recorder()
            rec.output(head, 'head')
            rec.output(model.subject_head, 'subject_logits')
            rec.output(model.language_model, 'text')
            rec.output(model.text_positional_encoding, 'text_pos')
            try:
                losses = model(
                    padded.clone(), data['data_samples'], mode='loss')
            finally:
                rec.remove()
            total, _ = model.parse_losses(losses)
            outs = dict(rec.outputs['head'])
            outs['subject_logits'] = rec.outputs['subject_logits']
            named = [(n, p) for n, p in model.named_parameters()
                     if p.requires_grad]
            # the tensors our (float32) subject loss reaches
            subject_grads = torch.autograd.grad(
                losses['loss_subject'], [p for _, p in named],
                retain_graph=True,
                allow_unused=True)
            res['subject_fed'] = {
                n
                for (n, _), g in zip(named, subject_grads) if g is not None
            }
            hyper = {}
            for group in optim_wrapper.optimizer.param_groups:
                for p in group['params']:
                    hyper[id(p)] = (group['lr'], group['weight_decay'])
            before = {n: p.detach().clone() for n, p in named}
            optim_wrapper.zero_grad()
            optim_wrapper.backward(total)
            grads = {
                n: p.grad.detach().clone()
                for n, p in named if p.grad is not None
            }
            optim_wrapper.step()
    finally:
        head.assigner = recorder.assigner
    hub = optim_wrapper.message_hub.get_scalar('train/grad_norm')
    res.update(
        losses={
            k: v.detach()
            for k, v in losses.items()
        },
        total=total.detach(),
        outputs=_detach(outs),
        matched=recorder.matched,
        grads=grads,
        grad_norm=torch.tensor(hub.current(), dtype=torch.float64),
        hyper={
            n: hyper[id(p)]
            for n, p in named
        },
        before=before,
        after={
            n: p.detach().clone()
            for n, p in named
        },
        text=_detach(rec.outputs['text']),
        text_pos=rec.outputs['text_pos'].detach())
    # the subject chosen from the recorded logits, as select_subject does
    text = res['text']
    chunk_spans, chunk_valid = model._noun_chunk_token_spans(
        data['data_samples'], batch['texts'], text['offsets'],
        text['word_pad_mask'])
    res['chunks'] = [[
        list(s) for s, v in zip(sp, va) if v
    ] for sp, va in zip(chunk_spans.tolist(), chunk_valid.tolist())]
    res['subject_spans'] = model.subject_head.select(
        res['outputs']['subject_logits'], text['word_pad_mask'], chunk_spans,
        chunk_valid).tolist()
    res['pad_mask'] = model._image_pad_mask(padded, data['data_samples'])
    return res


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------
class TrainDiffTable(co.DiffTable):
    """:class:`compare_official.DiffTable` with a tolerance per row, a
    floor under the scale of the relative difference, a hint for
    unexplained differences and summary rows over many tensors."""

    def add(self,
            stage: str,
            name: str,
            ours: torch.Tensor,
            official: torch.Tensor,
            expected: Optional[str] = None,
            tol: Optional[float] = None,
            tol_note: str = '',
            floor: float = 0.,
            hint: str = '') -> Dict:
        """Compare two tensors and add a row (see ``DiffTable.add``).

        Args:
            tol (float, optional): Replaces the table's tolerance for this
                row; ``tol_note`` says why (shown when it matters).
            floor (float): The relative difference is taken against
                ``max(max |official|, floor)``. Defaults to 0.
            hint (str): Note of the row if it is ``DIFF``.
        """
        return self._add_row(
            dict(
                stage=stage,
                name=name,
                **_floored_stats(ours, official, floor)), expected, tol,
            tol_note, hint)

    def add_many(self,
                 stage: str,
                 name: str,
                 pairs: Sequence[Tuple[torch.Tensor, torch.Tensor]],
                 expected: Optional[str] = None,
                 tol: Optional[float] = None,
                 tol_note: str = '',
                 floor: float = 0.,
                 hint: str = '') -> Dict:
        """A row over several tensor pairs (see :meth:`add`): the largest
        absolute and per-tensor relative differences; shape = the number
        of tensors."""
        stats = [_floored_stats(o, f, floor) for o, f in pairs]
        bad = [s for s in stats if s['shape_mismatch']]
        row = dict(
            stage=stage,
            name=name,
            shape=[len(stats)],
            max_abs=max((s['max_abs'] for s in stats), default=0.),
            max_rel=max((s['max_rel'] for s in stats), default=0.),
            shape_mismatch=bool(bad))
        if bad:
            row.update(
                shape=bad[0]['shape'],
                official_shape=bad[0]['official_shape'],
                max_abs=float('nan'),
                max_rel=float('nan'))
        return self._add_row(row, expected, tol, tol_note, hint)

    def add_equal(self, *args, **kwargs) -> Dict:
        """See ``DiffTable.add_equal`` (the row records the tolerance
        too)."""
        row = super().add_equal(*args, **kwargs)
        row['tol'] = self.tol
        return row

    def _add_row(self, row: Dict, expected: Optional[str],
                 tol: Optional[float], tol_note: str, hint: str) -> Dict:
        tol = self.tol if tol is None else tol
        bad = row['shape_mismatch'] or not row['max_rel'] <= tol
        row['status'] = ('fix' if expected else 'DIFF') if bad else 'ok'
        if bad:
            row['note'] = expected or hint
        else:
            row['note'] = tol_note if row['max_rel'] > self.tol else ''
        row['tol'] = tol
        self.rows.append(row)
        return row


def _floored_stats(ours: torch.Tensor, official: torch.Tensor,
                   floor: float) -> Dict:
    """``compare_official.diff_stats`` with the relative difference taken
    against ``max(max |official|, floor)``."""
    stats = co.diff_stats(ours, official)
    if floor > 0 and not stats['shape_mismatch'] and official.numel():
        scale = official.detach().double().abs().max().item()
        stats['max_rel'] = stats['max_abs'] / max(scale, floor)
    return stats


def _token_spans(positive_map: Dict[int, List[int]]) -> List[List[int]]:
    return [[v[0], v[-1] + 1] for v in positive_map.values()]


def detect_input_fixes(ours: Dict, off: Dict) -> Tuple[Optional[str], Dict]:
    """Which documented fixes the captions trigger (module docstring).

    Returns:
        tuple: the joined reasons (None if none) and the facts.
    """
    lengths = (~ours['text']['word_pad_mask']).sum(-1).tolist()
    off_chunks = [_token_spans(pm) for pm in off['positive_maps']]
    chosen = [list(span) for span, _ in off['subject_spans']]
    padded_to = max(m for _, m in off['subject_spans'])
    info = dict(
        token_lengths=lengths,
        our_chunk_token_spans=ours['chunks'],
        official_chunk_token_spans=off_chunks,
        our_subject_spans=ours['subject_spans'],
        official_subject_spans=chosen,
        official_subject_padded_to=padded_to)
    reasons = []
    if len(set(lengths)) > 1:
        reasons.append(FIX_PADDING)
    if any(e - s < padded_to for s, e in chosen):
        reasons.append(co.FIX_SUBJECT)
    if ours['chunks'] != off_chunks:
        reasons.append(co.FIX_CHUNKS)
    return (' + '.join(reasons) if reasons else None), info


def _name_map(values: Dict[str, torch.Tensor]) -> Tuple[Dict, Dict]:
    """Convert official per-parameter tensors to our names with the
    checkpoint converter (the box heads shared by the official decoder
    appear under both of their names).

    Returns:
        tuple: ``{our name: tensor}`` and ``{our name: official name}``
        (``bbox_embed.*`` rather than ``transformer.decoder.bbox_embed.*``).
    """
    from dmformer.models.utils.ckpt_convert import convert_dmformer_official
    converted, _ = convert_dmformer_official(values)
    by_id: Dict[int, str] = {}
    for name in sorted(values, key=lambda n: n.startswith('transformer.')):
        by_id.setdefault(id(values[name]), name)
    names = {k: by_id.get(id(v), '?') for k, v in converted.items()}
    return converted, names


def compare_train(ours: Dict, off: Dict, args: argparse.Namespace,
                  forward_fix: Optional[str],
                  num_layers: int) -> Tuple[TrainDiffTable, Dict]:
    """Build the table (see the module docstring)."""
    table = TrainDiffTable(args.tol)
    fp32 = dict(tol=args.fp32_tol, tol_note=FP32_NOTE)
    info: Dict = {}
    # -- inputs
    table.add(
        'input',
        'padded frames (our preprocessor, float32)',
        ours['preprocessed'],
        off['padded'],
        tol=args.fp32_tol,
        tol_note='our preprocessor normalises in float32')
    table.add(
        'input',
        'word positions (official as is)',
        ours['text_pos'],
        off['text_pos_as_is'],
        expected=FIX_TEXT_POS)
    table.add('input', 'word positions', ours['text_pos'], off['text_pos'])
    off_pad = off['pad_mask']
    table.add_equal(
        'input', 'image padding mask equal (every frame)',
        [bool(torch.equal(ours['pad_mask'], m))
         for m in off_pad.unbind(1)], [True] * off_pad.shape[1])
    table.add_equal('input', 'modules that can still drop (ours, official)',
                    [ours['active_dropout'], off['active_dropout']], [[], []])
    # -- forward outputs of the last layer
    out_off = off['outputs']
    out = ours['outputs']
    for key, off_key in (('all_cls_scores', 'pred_logits'),
                         ('all_bbox_preds', 'pred_boxes'), ('all_mask_preds',
                                                            'pred_masks')):
        table.add(
            'forward',
            f'{key} (last layer)',
            out[key][-1],
            out_off[off_key],
            expected=forward_fix)
    table.add('forward', 'subject logits', out['subject_logits'],
              out_off['subject'])
    table.add_equal(
        'forward',
        'noun-chunk token spans',
        ours['chunks'], [_token_spans(pm) for pm in off['positive_maps']],
        expected=co.FIX_CHUNKS)
    table.add_equal(
        'forward',
        'chosen subject (token span per caption)',
        ours['subject_spans'], [list(s) for s, _ in off['subject_spans']],
        expected=forward_fix)
    # -- matching; official order: last layer, then aux 0 .. L-2
    off_by_layer = off['matched'][1:] + off['matched'][:1]
    for lvl in range(num_layers):
        table.add_equal(
            'matcher',
            f'layer {lvl} matched query per clip',
            ours['matched'][lvl],
            off_by_layer[lvl],
            expected=forward_fix)
    # -- losses (both weighted)
    iou_hint = (GIOU_HINT + ': a documented fix, see --official-iou'
                if args.official_iou == 'official' else '')
    for name in sorted(off['losses'], key=_loss_sort_key):
        our_name = official_loss_to_ours(name, num_layers)
        if our_name not in ours['losses']:
            raise CompareError(f'our model returned no {our_name!r} '
                               f'(official {name!r})')
        if name == 'subject':
            continue
        table.add(
            'loss',
            f'{name} -> {our_name}',
            ours['losses'][our_name],
            off['losses'][name],
            expected=forward_fix,
            hint=iou_hint if 'giou' in name else '')
        if 'giou' in name and 'losses_as_is' in off:
            table.add(
                'loss',
                f'{name} (official as is) -> {our_name}',
                ours['losses'][our_name],
                off['losses_as_is'][name],
                expected=FIX_GIOU)
    b = len(off['texts'])
    table.add(
        'loss',
        'subject -> loss_subject (official as is)',
        ours['losses']['loss_subject'],
        off['losses']['subject'],
        expected=FIX_SUBJECT_LOSS)
    table.add(
        'loss',
        f'subject / {b} -> loss_subject',
        ours['losses']['loss_subject'],
        off['losses']['subject'] / b,
        expected=forward_fix,
        **fp32)
    mapped = {official_loss_to_ours(n, num_layers) for n in off['losses']}
    table.add_equal('loss', 'our loss terms without an official one',
                    sorted(set(ours['losses']) - mapped), [])
    table.add(
        'loss',
        'total (official as is)',
        ours['total'],
        off['total'],
        expected=FIX_SUBJECT_LOSS)
    table.add(
        'loss',
        'total (official with subject / batch)',
        ours['total'],
        off['total_mean_subject'],
        expected=forward_fix,
        hint=iou_hint)
    # -- gradients (official names mapped to ours by the converter)
    off_grads, names_map = _name_map(off['grads'])
    off_grads_as_is, _ = _name_map(off['grads_as_is'])
    ours_only = sorted(set(ours['grads']) - set(off_grads))
    off_only = sorted(set(off_grads) - set(ours['grads']))
    table.add_equal('gradient', 'tensors with a gradient, only ours / only '
                    'official', [ours_only, off_only], [[], []])
    common = [n for n in ours['grads'] if n in off_grads]
    fed = ours['subject_fed']
    groups: Dict[str, List[str]] = {}
    for name in common:
        groups.setdefault(group_name(name), []).append(name)
    grad_floor = args.grad_floor * max(
        (g.abs().max().item() for g in off_grads.values()), default=0.)
    for group, members in groups.items():
        kwargs = fp32 if any(n in fed for n in members) else {}
        table.add_many(
            'gradient',
            f'{group}.* ({len(members)} tensors)',
            [(ours['grads'][n], off_grads[n]) for n in members],
            expected=forward_fix,
            floor=grad_floor,
            **kwargs)
    table.add_many(
        'gradient',
        f'all {len(common)} tensors (official as is)',
        [(ours['grads'][n], off_grads_as_is[n]) for n in common],
        expected=FIX_SUBJECT_LOSS,
        floor=grad_floor)
    worst = sorted(
        common,
        key=lambda n: -_floored_stats(ours['grads'][n], off_grads[n],
                                      grad_floor)['max_rel'])[:args.worst]
    for name in worst:
        table.add(
            'gradient',
            f'worst: {name} <- {names_map.get(name, "?")}',
            ours['grads'][name],
            off_grads[name],
            expected=forward_fix,
            floor=grad_floor,
            **(fp32 if name in fed else {}))
    table.add(
        'gradient',
        f'total norm before clipping (max norm {off["max_norm"]:g})',
        ours['grad_norm'],
        off['grad_norm'],
        expected=forward_fix,
        **fp32)
    table.add(
        'gradient',
        'total norm before clipping (official as is)',
        ours['grad_norm'],
        off['grad_norm_as_is'],
        expected=FIX_SUBJECT_LOSS)
    # -- optimizer
    differ = [
        f'{n}: ours {ours["hyper"][n]}, official '
        f'{off["hyper"][names_map[n]]}' for n in common
        if not _close_pair(ours['hyper'][n], off['hyper'][names_map[n]])
    ]
    table.add_equal('optimizer', 'tensors whose lr or weight decay differ',
                    differ, [])
    info['lr_weight_decay'] = sorted({str(ours['hyper'][n]) for n in common})
    off_before, _ = _name_map(off['before'])
    off_after, _ = _name_map(off['after'])
    updates = {n: off_after[n] - off_before[n] for n in common}
    # Adam moves every element by at most about lr: the updates are
    # compared relative to the largest one
    step_scale = max((u.abs().max().item() for u in updates.values()),
                     default=0.)
    for group, members in groups.items():
        kwargs = fp32 if any(n in fed for n in members) else {}
        table.add_many(
            'optimizer',
            f'AdamW update of {group}.*',
            [(ours['after'][n] - ours['before'][n], updates[n])
             for n in members],
            expected=forward_fix,
            floor=step_scale,
            **kwargs)
    for label, names in (('the subject loss reaches',
                          [n for n in common if n in fed]),
                         ('the other', [n for n in common if n not in fed])):
        table.add_many(
            'optimizer',
            f'after the step: the {len(names)} tensors {label}'
            if label != 'the other' else
            f'after the step: the other {len(names)} tensors',
            [(ours['after'][n], off_after[n]) for n in names],
            expected=forward_fix,
            **(fp32 if label != 'the other' else {}))
    info['num_trainable'] = len(common)
    info['official_names'] = {n: names_map.get(n, '?') for n in common}
    return table, info


def _close_pair(a: Tuple[float, float], b: Tuple[float, float]) -> bool:
    return all(
        abs(x - y) <= 1e-12 * max(abs(x), abs(y), 1.) for x, y in zip(a, b))


def _loss_sort_key(name: str) -> Tuple[int, int, str]:
    match = _OFFICIAL_LOSS.match(name)
    if match is None:
        return (2, 0, name)
    layer = int(match.group(2)) if match.group(2) is not None else 99
    order = list(LOSS_NAMES).index(match.group(1))
    return (0, layer, str(order))


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compare one DMFormer training step (losses, '
        'gradients, AdamW update) with the official code, in float64.')
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
        'name (dmformer.testing.seeded_parameters), so that no layer starts '
        'at zero')
    parser.add_argument(
        '--texts',
        nargs='+',
        default=list(DEFAULT_TEXTS),
        metavar='TEXT',
        help='one caption per clip')
    parser.add_argument(
        '--subjects',
        nargs='+',
        default=list(DEFAULT_SUBJECTS),
        metavar='PHRASE',
        help='the labelled subject of every caption (one of its spaCy noun '
        'chunks)')
    parser.add_argument(
        '--shapes',
        type=int,
        nargs='+',
        default=list(DEFAULT_SHAPES),
        metavar='N',
        help='H W of every clip (H1 W1 H2 W2 ...)')
    parser.add_argument(
        '--num-frames', type=int, default=2, help='frames of every clip')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the weights and frames')
    parser.add_argument(
        '--tol',
        type=float,
        default=1e-8,
        help='largest relative difference counted as agreement')
    parser.add_argument(
        '--fp32-tol',
        type=float,
        default=1e-4,
        help='the same for the rows fed by our float32 subject loss')
    parser.add_argument(
        '--grad-floor',
        type=float,
        default=1e-9,
        help='relative gradient differences are taken against max(max '
        '|official tensor|, this x the largest official gradient), so that '
        'gradients that are zero up to rounding (e.g. of attention key '
        'biases) do not count')
    parser.add_argument(
        '--official-iou',
        choices=('fix', 'official', 'mmdet'),
        default='fix',
        help='"fix" (default): the GIoU loss rows compare the official step '
        'as it is (marked fix), every other row the official step with '
        'the mmdet GIoU formula ours uses (util/box_ops.py replaced); '
        '"official": every row the official step as it is; "mmdet": every '
        'row the neutralised step')
    parser.add_argument(
        '--worst',
        type=int,
        default=5,
        help='gradient tensors listed individually (largest relative '
        'difference first)')
    parser.add_argument('--json', help='write the table to this JSON file')
    args = parser.parse_args(argv)
    if len(args.shapes) % 2 or len(args.shapes) // 2 != len(args.texts):
        parser.error('--shapes needs H W for every caption of --texts')
    if len(args.subjects) != len(args.texts):
        parser.error('--subjects needs one phrase per caption of --texts')
    if len(args.texts) < 2:
        parser.error('give at least two captions (a batch of clips)')
    if args.num_frames < 2:
        parser.error('--num-frames must be >= 2 (one frame has no object)')
    if min(args.shapes) < 32:
        parser.error('every --shapes size must be at least 32')
    if args.worst < 0 or args.grad_floor < 0:
        parser.error('--worst and --grad-floor must be >= 0')
    args.shapes = [
        tuple(args.shapes[i:i + 2]) for i in range(0, len(args.shapes), 2)
    ]
    return args


def run(args: argparse.Namespace) -> Tuple[TrainDiffTable, Dict]:
    """Build both models, run one training step each and compare.

    Returns:
        tuple: the table and a dict of facts.
    """
    root = co.check_official_repo(args.official_repo)
    co.check_packages()
    if not osp.isfile(args.config):
        raise CompareError(f'config file not found: {args.config}')
    from mmengine.config import Config

    from dmformer.models.utils.ckpt_convert import (build_model_from_config,
                                                    convert_dmformer_official)
    cfg = Config.fromfile(args.config)
    ours_model = build_model_from_config(args.config).double()
    batch = make_batch(args.num_frames, args.shapes, args.texts, args.subjects,
                       args.seed)
    try:
        with co.official_environment(root):
            off = run_official(args, batch)
            if args.official_iou == 'fix':
                as_is = run_official(
                    argparse.Namespace(**dict(
                        vars(args), official_iou='official')), batch)
                off['losses_as_is'] = as_is['losses']
    except ModuleNotFoundError as err:
        name = (err.name or '?').split('.')[0]
        raise CompareError(f'the official code needs the missing package '
                           f'{name!r}: pip install {name}') from err
    converted, _ = convert_dmformer_official(off.pop('state'))
    result = ours_model.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CompareError(
            f'the converted official weights do not fit {args.config}: '
            f'{len(result.missing_keys)} missing keys (e.g. '
            f'{result.missing_keys[:3]}), {len(result.unexpected_keys)} '
            f'unexpected (e.g. {result.unexpected_keys[:3]})')
    disable_dropout(ours_model)
    ours = run_ours(ours_model, cfg.optim_wrapper, batch, off['chunks'],
                    off['padded'])
    forward_fix, info = detect_input_fixes(ours, off)
    num_layers = ours['outputs']['all_cls_scores'].shape[0]
    table, more = compare_train(ours, off, args, forward_fix, num_layers)
    info.update(more)
    info.update(
        texts=list(args.texts),
        subjects=list(args.subjects),
        shapes=[list(s) for s in args.shapes],
        official_noun_chunks=[[list(c) for c in cs] for cs in off['chunks']],
        subject_labels=[lab[0].tolist() for lab in off['labels']],
        matched=ours['matched'],
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
    print(f"captions: {info['texts']}; subjects: {info['subjects']}; "
          f"clips (H, W): {info['shapes']}; weights: {info['weights']}")
    print(f"official subject labels: {info['subject_labels']}; token "
          f"lengths: {info['token_lengths']}; official subject choice: "
          f"{info['official_subject_spans']}")
    print(f"trainable tensors: {info['num_trainable']}; (lr, weight decay): "
          f"{', '.join(info['lr_weight_decay'])}; matched queries per "
          f"layer: {info['matched']}")
    if args.official_iou != 'official':
        print('the official generalized_box_iou is replaced by the mmdet '
              'formula in every row but the "official as is" ones '
              f'(--official-iou {args.official_iou})')
    print(table.format())
    print(f'{len(table.rows)} rows (tol {table.tol:g} relative): '
          f"{sum(r['status'] == 'ok' for r in table.rows)} agree, "
          f"{sum(r['status'] == 'fix' for r in table.rows)} differ by a "
          f'documented fix, {table.num_unexpected} differ unexpectedly')
    if args.json:
        out = dict(
            official_repo=osp.abspath(args.official_repo),
            config=args.config,
            checkpoint=args.checkpoint,
            num_frames=args.num_frames,
            seed=args.seed,
            tol=table.tol,
            fp32_tol=args.fp32_tol,
            info=info,
            rows=table.rows)
        dirname = osp.dirname(osp.abspath(args.json))
        os.makedirs(dirname, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2, allow_nan=True, default=str)
        print(f'written {args.json}')
    return 1 if table.num_unexpected else 0


if __name__ == '__main__':
    sys.exit(main())
