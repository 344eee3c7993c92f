# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of tools/analysis_tools/compare_official_train.py.

The pieces that need no official checkout run everywhere (quickly). With
``DMFORMER_OFFICIAL_REPO`` naming a local checkout of gaomingqi/DMFormer,
the official GIoU is checked against the formula the tool substitutes for
it, and one whole training step is compared (two paper-size models in
float64, about 1.5-2.5 min on 2 CPU cores).
"""
import argparse
import importlib
import json
import os
import os.path as osp

import pytest
import torch
from torch import nn

from dmformer.testing import load_script

tool = load_script('tools/analysis_tools/compare_official_train.py')
OFFICIAL_REPO = os.environ.get('DMFORMER_OFFICIAL_REPO')
needs_official = pytest.mark.skipif(
    not OFFICIAL_REPO
    or not osp.isfile(osp.join(OFFICIAL_REPO or '', 'models', 'dmmi.py')),
    reason='set DMFORMER_OFFICIAL_REPO to an official checkout')


def test_parse_args_defaults():
    args = tool.parse_args(['/some/checkout'])
    assert args.texts == list(tool.DEFAULT_TEXTS)
    assert args.subjects == list(tool.DEFAULT_SUBJECTS)
    assert args.shapes == [(96, 128), (128, 96)]
    assert args.num_frames == 2 and args.official_iou == 'fix'
    assert args.tol == 1e-8 and args.fp32_tol == 1e-4
    args = tool.parse_args([
        'repo', '--texts', 'a b', 'c d', 'e f', '--subjects', 'b', 'd', 'f',
        '--shapes', '32', '64', '64', '32', '48', '48', '--official-iou',
        'mmdet'
    ])
    assert args.shapes == [(32, 64), (64, 32), (48, 48)]
    assert args.official_iou == 'mmdet'


@pytest.mark.parametrize(
    'argv',
    [
        ['--shapes', '96', '128', '128'],  # odd count
        ['--shapes', '96', '128'],  # one clip for two captions
        ['--subjects', 'a horse'],  # one subject for two captions
        [
            '--texts', 'a horse', '--subjects', 'a horse', '--shapes', '64',
            '64'
        ],  # a batch of one
        ['--num-frames', '1'],
        ['--shapes', '96', '16', '128', '96'],
        ['--grad-floor', '-1'],
        ['--official-iou', 'torchvision'],
    ])
def test_parse_args_rejects(argv, capsys):
    with pytest.raises(SystemExit) as info:
        tool.parse_args(['repo'] + argv)
    assert info.value.code == 2
    assert 'error:' in capsys.readouterr().err


def test_bad_repo_is_one_line(tmp_path, capsys):
    assert tool.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: ')
    assert 'not an official DMFormer checkout' in err
    assert 'Traceback' not in err
    assert tool.main([str(tmp_path / 'missing')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'is not a directory' in err


def test_official_loss_names():
    assert tool.official_loss_to_ours('loss_ce') == 'loss_cls'
    assert tool.official_loss_to_ours('loss_bbox') == 'loss_bbox'
    assert tool.official_loss_to_ours('loss_giou') == 'loss_iou'
    assert tool.official_loss_to_ours('loss_mask') == 'loss_mask'
    assert tool.official_loss_to_ours('loss_dice') == 'loss_dice'
    assert tool.official_loss_to_ours('loss_ce_0') == 'd0.loss_cls'
    assert tool.official_loss_to_ours('loss_giou_2') == 'd2.loss_iou'
    assert tool.official_loss_to_ours('subject') == 'loss_subject'
    # the official build (dmmi.py) names every term of 4 decoder layers
    names = ['loss_ce', 'loss_bbox', 'loss_giou', 'loss_mask', 'loss_dice']
    official = names + [f'{n}_{i}' for i in range(3) for n in names]
    ours = {tool.official_loss_to_ours(n) for n in official}
    assert len(ours) == 20
    assert {n
            for n in ours if not n.startswith('d')} == {
                'loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice'
            }
    with pytest.raises(tool.CompareError, match='out of range'):
        tool.official_loss_to_ours('loss_ce_3')
    assert tool.official_loss_to_ours('loss_ce_3', num_layers=5) == \
        'd3.loss_cls'
    for bad in ('loss_xyz', 'class_error', 'loss_ce_a'):
        with pytest.raises(tool.CompareError, match='unknown'):
            tool.official_loss_to_ours(bad)


def test_group_name():
    assert tool.group_name('bbox_head.decoder.layers.0.norms.0.weight') == \
        'bbox_head.decoder'
    assert tool.group_name('neck.convs.0.conv.weight') == 'neck.convs'


class _DropPath(nn.Module):

    def __init__(self, drop_prob):
        super().__init__()
        self.drop_prob = drop_prob


class _HFStyleAttention(nn.Module):

    def __init__(self):
        super().__init__()
        self.dropout_prob = 0.1


def test_disable_dropout():
    model = nn.Sequential(
        nn.Dropout(0.1), nn.MultiheadAttention(8, 2, dropout=0.1),
        _DropPath(0.2), _HFStyleAttention(), nn.Dropout2d(0.), nn.Linear(8, 8))
    assert tool.active_dropout(model) == ['0', '1', '2', '3']
    assert tool.disable_dropout(model) == 4
    assert tool.active_dropout(model) == []
    assert model[0].p == 0 and model[1].dropout == 0
    assert model[2].drop_prob == 0 and model[3].dropout_prob == 0
    # train-mode attention is now deterministic
    model.train()
    x = torch.randn(3, 1, 8)
    assert torch.equal(model[1](x, x, x)[0], model[1](x, x, x)[0])
    assert tool.disable_dropout(model) == 0


def test_default_dtype_is_restored():
    before = torch.get_default_dtype()
    with tool.default_dtype(torch.float64):
        assert torch.zeros(1).dtype == torch.float64
    assert torch.get_default_dtype() == before
    with pytest.raises(ValueError):
        with tool.default_dtype(torch.float64):
            raise ValueError
    assert torch.get_default_dtype() == before


def test_msda_apply_with_autograd():
    calls = []

    def core(value, shapes, locations, weights):
        calls.append(shapes)
        return value * weights.sum() + locations.sum()

    apply = tool._msda_apply_with_autograd(core).__func__
    value = torch.randn(2, 3, requires_grad=True)
    weights = torch.randn(4, requires_grad=True)
    locations = torch.randn(2, requires_grad=True)
    out = apply(value, 'shapes', 'starts', locations, weights, 64)
    out.sum().backward()
    assert calls == ['shapes']
    assert torch.allclose(value.grad, weights.sum().expand(2, 3))
    assert torch.allclose(locations.grad, torch.full((2, ), 6.))


def test_typed_key_padding_mask_float64():
    mha = nn.MultiheadAttention(8, 2).double()
    mha.register_forward_pre_hook(
        tool._typed_key_padding_mask, with_kwargs=True)
    q = torch.randn(3, 1, 8, dtype=torch.float64)
    k = torch.randn(4, 1, 8, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0]])  # HF style, 1 = valid
    out = mha(q, k, k, key_padding_mask=mask)[0]
    ref = mha(q, k, k, key_padding_mask=mask.double())[0]
    assert out.dtype == torch.float64 and torch.equal(out, ref)
    # bool and float masks are left alone
    for other in (mask == 0, mask.double()):
        assert tool._typed_key_padding_mask(
            mha, (q, k, k), dict(key_padding_mask=other)) is None


class _Nested:

    def __init__(self, tensors, mask):
        self.tensors = tensors
        self.mask = mask


def test_bool_text_pad_mask():
    nested = _Nested(torch.zeros(1, 3, 2), torch.tensor([[1, 1, 0]]))
    (out, ) = tool._bool_text_pad_mask(None, (nested, ))
    assert out.tensors is nested.tensors
    assert out.mask.tolist() == [[False, False, True]]
    # a bool mask is left alone
    assert tool._bool_text_pad_mask(None, (out, )) is None


def test_mmdet_style_giou_matches_mmdet():
    from mmdet.structures.bbox import bbox_overlaps
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(6, 2, generator=gen, dtype=torch.float64)
    wh = torch.rand(6, 2, generator=gen, dtype=torch.float64) * 0.5
    boxes = torch.cat([xy, xy + wh], -1)
    targets = torch.cat([boxes[:3], torch.zeros(1, 4, dtype=boxes.dtype)])
    ours = tool.mmdet_style_giou(boxes, targets)
    ref = bbox_overlaps(boxes, targets, mode='giou')
    assert ours.shape == (6, 4)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-15)
    # a zero (absent) target has no overlap: IoU 0, only the GIoU term
    area = (wh[:, 0] * wh[:, 1])
    enclose = (xy + wh).prod(-1)
    assert torch.allclose(ours[:, 3], -(enclose - area) / enclose)


def test_make_batch():
    batch = tool.make_batch(
        2, [(64, 96), (96, 64)],
        list(tool.DEFAULT_TEXTS),
        list(tool.DEFAULT_SUBJECTS),
        seed=0)
    assert [tuple(f.shape) for f in batch['frames']] == [(2, 3, 64, 96),
                                                         (2, 3, 96, 64)]
    assert all(x.dtype == torch.float64 for x in batch['inputs'])
    assert batch['valid'][0].tolist() == [True, False]
    assert batch['valid'][1].tolist() == [True, True]
    assert not batch['masks'][0][1].any() and batch['masks'][0][0].any()
    assert torch.count_nonzero(batch['boxes'][0][1]) == 0
    for text, subject, (s, e) in zip(batch['texts'], tool.DEFAULT_SUBJECTS,
                                     batch['subject_spans']):
        assert text[s:e] == subject and s > 0
    # the masks lie inside their boxes and the normalised boxes are exact
    # in float32 (both codes normalise them in float32)
    for frames, masks, boxes in zip(batch['frames'], batch['masks'],
                                    batch['boxes']):
        h, w = frames.shape[-2:]
        for mask, box in zip(masks, boxes):
            if not mask.any():
                continue
            ys, xs = mask.nonzero(as_tuple=True)
            assert xs.min() >= box[0] and xs.max() < box[2]
            assert ys.min() >= box[1] and ys.max() < box[3]
        norm = tool.xyxy_to_normalized_cxcywh(boxes, h, w)
        assert torch.equal(norm.float().double(), norm)
        assert (norm >= 0).all() and (norm <= 1).all()
    again = tool.make_batch(
        2, [(64, 96), (96, 64)],
        list(tool.DEFAULT_TEXTS),
        list(tool.DEFAULT_SUBJECTS),
        seed=0)
    assert torch.equal(again['inputs'][1], batch['inputs'][1])


def test_make_batch_rejects_bad_subject():
    with pytest.raises(tool.CompareError, match='not in caption 1'):
        tool.make_batch(
            2, [(64, 96), (96, 64)],
            list(tool.DEFAULT_TEXTS), ['a horse', 'a cat'],
            seed=0)
    with pytest.raises(tool.CompareError, match='exact in float32'):
        tool.make_batch(
            2, [(64, 96), (96, 80)],
            list(tool.DEFAULT_TEXTS),
            list(tool.DEFAULT_SUBJECTS),
            seed=0)
    with pytest.raises(tool.CompareError, match='one each'):
        tool.make_batch(
            2, [(64, 96)],
            list(tool.DEFAULT_TEXTS),
            list(tool.DEFAULT_SUBJECTS),
            seed=0)


def test_official_pseudo_label():
    label = tool.official_pseudo_label({1: [1, 2], 2: [4, 5]}, 2, 8)
    assert label.tolist() == [[0, 0, 0, 0, 1, 1, 0, 0]]
    assert label.dtype == torch.long


def test_official_param_groups():
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.add_module('0', nn.Linear(2, 2))
    model.text_encoder = nn.Linear(2, 2)
    model.reference_points = nn.Linear(2, 2)
    model.head = nn.Linear(2, 2)
    model.text_encoder.weight.requires_grad_(False)
    args = argparse.Namespace(
        lr=1e-4,
        lr_backbone=5e-5,
        lr_text_encoder=1e-5,
        lr_backbone_names=['backbone.0'],
        lr_text_encoder_names=['text_encoder'],
        lr_linear_proj_names=['reference_points', 'sampling_offsets'],
        lr_linear_proj_mult=1.0)
    groups = tool.official_param_groups(model, args)
    assert [g['lr'] for g in groups] == [1e-4, 5e-5, 1e-5, 1e-4]
    assert [len(g['params']) for g in groups] == [2, 2, 1, 2]
    assert groups[2]['params'][0] is model.text_encoder.bias
    assert groups[0]['params'][0] is model.head.weight


def test_train_diff_table():
    table = tool.TrainDiffTable(tol=1e-8)
    x = torch.randn(4, dtype=torch.float64)
    assert table.add('a', 'same', x, x.clone())['status'] == 'ok'
    row = table.add('a', 'fp32', x, x * (1 + 1e-6), tol=1e-4, tol_note='f')
    assert row['status'] == 'ok' and row['note'] == 'f'
    row = table.add('a', 'hinted', x, x + 1., hint='why')
    assert row['status'] == 'DIFF' and row['note'] == 'why'
    row = table.add('a', 'fixed', x, x + 1., expected='fix: ok', hint='h')
    assert row['status'] == 'fix' and row['note'] == 'fix: ok'
    # a gradient that is zero up to rounding: the floor keeps it quiet
    noise = torch.tensor([1e-17, -2e-17], dtype=torch.float64)
    assert table.add('g', 'noise', noise, -noise)['status'] == 'DIFF'
    row = table.add('g', 'noise floored', noise, -noise, floor=1e-8)
    assert row['status'] == 'ok'
    assert row['max_rel'] == pytest.approx(4e-17 / 1e-8)
    row = table.add_many('g', 'many', [(x, x), (x, x + 1e-3), (noise, noise)])
    assert row['shape'] == [3] and row['status'] == 'DIFF'
    assert row['max_abs'] == pytest.approx(1e-3)
    row = table.add_many('g', 'shapes', [(x, x), (x, x[:2])])
    assert row['shape_mismatch'] and row['status'] == 'DIFF'
    assert table.num_unexpected == 4
    text = table.format()
    assert 'DIFF [' in text and 'why' in text and 'fix: ok' in text
    json.dumps(table.rows)


@needs_official
def test_official_giou_differs_from_ours():
    """The one undocumented difference the tool reports: the official GIoU
    smooths IoU and GIoU terms with 1e-6; mmdet's (ours) does not."""
    from mmdet.models.losses import GIoULoss
    with tool.co.official_environment(OFFICIAL_REPO):
        box_ops = importlib.import_module('util.box_ops')
        pred = torch.tensor([[0.2, 0.3, 0.6, 0.7], [0.1, 0.1, 0.5, 0.4]],
                            dtype=torch.float64)
        target = torch.tensor([[0., 0., 0., 0.], [0.2, 0.2, 0.6, 0.5]],
                              dtype=torch.float64)
        official = torch.diag(box_ops.generalized_box_iou(pred, target))
    ours = 1 - GIoULoss(reduction='none')(pred, target)
    assert torch.allclose(ours,
                          torch.diag(tool.mmdet_style_giou(pred, target)))
    area = 0.4 * 0.4
    # absent frame (zero GT box): the official IoU is about 1e-6 / area
    assert (official[0] - ours[0]).item() == pytest.approx(
        1e-6 / area - 1e-6 * area / 0.42 / 0.42, rel=1e-3)
    assert 0 < (official - ours).abs().max() < 1e-4


@needs_official
def test_end_to_end(tmp_path, capsys):
    """One training step, float64, as the tool runs by default: the GIoU
    loss rows compare the official step as it is (a documented fix), every
    other row the official step with the mmdet GIoU formula, and must agree
    or differ only by a documented fix (see the module docstring of the
    tool and test_official_giou_differs_from_ours)."""
    out = tmp_path / 'train.json'
    status = tool.main([
        OFFICIAL_REPO, '--shapes', '64', '96', '96', '64', '--num-frames', '2',
        '--json',
        str(out)
    ])
    text = capsys.readouterr().out
    assert status == 0, text
    result = json.loads(out.read_text())
    rows = result['rows']
    assert rows and all(row['status'] in ('ok', 'fix') for row in rows), text
    names = {row['name'] for row in rows}
    # every loss term of every layer, all gradient groups and the step
    for name in ('loss_ce_0 -> d0.loss_cls', 'loss_giou_2 -> d2.loss_iou',
                 'loss_dice -> loss_dice', 'subject / 2 -> loss_subject',
                 'total (official with subject / batch)',
                 'tensors whose lr or weight decay differ',
                 'layer 3 matched query per clip'):
        assert name in names, name
    stages = {row['stage'] for row in rows}
    assert stages == {
        'input', 'forward', 'matcher', 'loss', 'gradient', 'optimizer'
    }
    # the documented fixes are the expected ones, nothing else
    fixes = [row for row in rows if row['status'] == 'fix']
    assert {row['note'] for row in fixes} == {
        tool.FIX_TEXT_POS, tool.FIX_SUBJECT_LOSS, tool.FIX_GIOU}
    assert 'loss_giou (official as is) -> loss_iou' in names
    # only the rows our float32 subject loss feeds use the looser tolerance
    loose = {row['name'] for row in rows if row['tol'] != result['tol']}
    assert loose and all(
        'subject' in n or 'resizer' in n or 'norm' in n or 'frames' in n
        for n in loose), loose
    info = result['info']
    assert info['num_trainable'] > 400
    assert info['lr_weight_decay'] == ['(0.0001, 0.0005)']
    assert info['subject_labels'][0][4:6] == [1, 1]
