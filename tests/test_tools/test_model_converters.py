# Copyright (c) OpenMMLab. All rights reserved.
import argparse
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dmformer.models.utils.ckpt_convert import (KeyRule,
                                                build_model_from_config,
                                                check_state_dict,
                                                convert_dmformer_official,
                                                convert_glip,
                                                correct_unfold_norm_order,
                                                correct_unfold_reduction_order,
                                                dmformer_mm_to_official,
                                                load_state_dict_from_file,
                                                revert_unfold_norm_order,
                                                revert_unfold_reduction_order,
                                                swin_mmdet_to_official,
                                                swin_official_to_mmdet)
from dmformer.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER_CFG = osp.join(ROOT, 'configs/_base_/models/dmformer_swin-t.py')
TINY_CFG = osp.join(ROOT, 'configs/dmformer/dmformer_tiny_synthetic.py')
# BERT depth reduced to 2 layers to keep the test fast; every other module
# has the paper model's (= the official checkpoint's) shapes.
PAPER_SMALL_BERT = dict(
    model=dict(language_model=dict(bert_config=dict(num_hidden_layers=2))))


def _load_tool(name):
    return load_script(f'tools/model_converters/{name}.py')


glip_tool = _load_tool('glip_to_dmformer')
official_tool = _load_tool('dmformer_official_to_mm')
check_tool = _load_tool('check_checkpoint_keys')


@pytest.fixture(scope='module')
def paper_model():
    torch.manual_seed(0)
    return build_model_from_config(PAPER_CFG, PAPER_SMALL_BERT)


@pytest.fixture(scope='module')
def paper_tiny_cfg(tmp_path_factory):
    """The tiny config without its training-only referring-map layer,
    which the official model does not have."""
    path = tmp_path_factory.mktemp('cfg') / 'tiny_paper_heads.py'
    path.write_text(f'_base_ = {TINY_CFG!r}\n'
                    'model = dict(bbox_head=dict(loss_ref_map=None, '
                    'loss_ref_map_dice=None))\n')
    return str(path)


@pytest.fixture(scope='module')
def tiny_model(paper_tiny_cfg):
    torch.manual_seed(0)
    return build_model_from_config(paper_tiny_cfg)


# ---------------------------------------------------------------------------
# Swin layouts
# ---------------------------------------------------------------------------
def _microsoft_patch_merging(x, hw, norm_w, norm_b, red_w):
    """Reference PatchMerging of Microsoft's Swin (x0..x3 concatenation)."""
    b, _, c = x.shape
    x = x.view(b, hw[0], hw[1], c)
    x0 = x[:, 0::2, 0::2]
    x1 = x[:, 1::2, 0::2]
    x2 = x[:, 0::2, 1::2]
    x3 = x[:, 1::2, 1::2]
    x = torch.cat([x0, x1, x2, x3], -1).view(b, -1, 4 * c)
    x = F.layer_norm(x, (4 * c, ), norm_w, norm_b)
    return F.linear(x, red_w)


def test_unfold_reorder_by_hand():
    # C = 1: Microsoft blocks [x(0,0), x(1,0), x(0,1), x(1,1)] -> unfold's
    # kernel order (0,0), (0,1), (1,0), (1,1)
    w = torch.tensor([[10., 11., 12., 13.]])
    assert correct_unfold_reduction_order(w).tolist() == [[10, 12, 11, 13]]
    # C = 2: unfold channel index is c * 4 + k
    n = torch.arange(8.)  # blocks [0 1 | 2 3 | 4 5 | 6 7]
    assert correct_unfold_norm_order(n).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]
    w = torch.randn(5, 24)
    assert torch.equal(
        revert_unfold_reduction_order(correct_unfold_reduction_order(w)), w)
    assert torch.equal(
        revert_unfold_norm_order(correct_unfold_norm_order(w[0])), w[0])


def test_converted_patch_merging_matches_microsoft():
    from mmdet.models.layers import PatchMerging
    torch.manual_seed(0)
    c, hw = 3, (4, 6)
    merge = PatchMerging(c, 2 * c, norm_cfg=dict(type='LN'))
    norm_w, norm_b = torch.randn(4 * c), torch.randn(4 * c)
    red_w = torch.randn(2 * c, 4 * c)
    official = OrderedDict({
        'layers.0.downsample.norm.weight': norm_w,
        'layers.0.downsample.norm.bias': norm_b,
        'layers.0.downsample.reduction.weight': red_w,
    })
    converted = swin_official_to_mmdet(official, '', '')
    prefix = 'stages.0.downsample.'
    assert set(converted) == {
        prefix + 'norm.weight', prefix + 'norm.bias',
        prefix + 'reduction.weight'
    }
    merge.load_state_dict(
        OrderedDict((k[len(prefix):], v) for k, v in converted.items()))
    x = torch.randn(2, hw[0] * hw[1], c)
    out, out_hw = merge(x, hw)
    assert out_hw == (2, 3)
    expected = _microsoft_patch_merging(x, hw, norm_w, norm_b, red_w)
    torch.testing.assert_close(out, expected)
    # without the re-ordering the outputs differ
    merge.load_state_dict(
        OrderedDict(
            (k.split('.', 3)[-1], v) for k, v in official.items()))
    assert not torch.allclose(merge(x, hw)[0], expected)


def test_relative_position_index_is_the_same():
    from mmdet.models.backbones.swin import WindowMSA
    ws = 7
    coords = torch.stack(
        torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing='ij'))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    microsoft = rel.sum(-1)
    mmdet_index = WindowMSA(96, 3, (ws, ws)).relative_position_index
    assert torch.equal(microsoft, mmdet_index)


def test_swin_names_by_hand():
    v = torch.zeros(1)
    pairs = {
        'patch_embed.proj.weight': 'patch_embed.projection.weight',
        'layers.2.blocks.5.attn.qkv.bias':
        'stages.2.blocks.5.attn.w_msa.qkv.bias',
        'layers.0.blocks.1.attn.relative_position_bias_table':
        'stages.0.blocks.1.attn.w_msa.relative_position_bias_table',
        'layers.1.blocks.0.mlp.fc1.weight':
        'stages.1.blocks.0.ffn.layers.0.0.weight',
        'layers.1.blocks.0.mlp.fc2.bias':
        'stages.1.blocks.0.ffn.layers.1.bias',
        'norm3.weight': 'norm3.weight',
    }
    converted = swin_official_to_mmdet({k: v
                                        for k in pairs}, '', 'backbone.')
    assert list(converted) == ['backbone.' + k for k in pairs.values()]
    with pytest.raises(ValueError, match='layers.0.blocks.0.foo'):
        swin_official_to_mmdet({'layers.0.blocks.0.foo': v}, '', '')


def test_key_rule():
    rule = KeyRule('a.{i}.b.{rest}', 'x.{i}.y.{rest}', lambda t: t * 2,
                   lambda t: t / 2)
    key, val = rule.apply('a.3.b.c.d', torch.ones(1))
    assert key == 'x.3.y.c.d' and val.item() == 2
    key, val = rule.apply('x.3.y.c.d', torch.ones(1), reverse=True)
    assert key == 'a.3.b.c.d' and val.item() == 0.5
    assert rule.apply('a.3.c', torch.ones(1)) is None
    with pytest.raises(ValueError, match='same placeholders'):
        KeyRule('a.{i}', 'b.{j}')
    with pytest.raises(ValueError, match='inverse'):
        KeyRule('a', 'b', forward_fn=lambda t: t)


# ---------------------------------------------------------------------------
# Official DMFormer
# ---------------------------------------------------------------------------
# names read in the official source (models/dmmi.py, segmentation.py,
# deformable_transformer.py, bertlayer.py, swint.py)
OFFICIAL_NAMES = {
    'backbone.0.body.layers.1.downsample.reduction.weight': (384, 768),
    'backbone.0.body.layers.2.blocks.5.attn.relative_position_bias_table':
    (169, 12),
    'backbone.0.body.norm3.weight': (768, ),
    'text_encoder.model.embeddings.word_embeddings.weight': (30522, 768),
    'text_encoder.model.encoder.layer.1.output.LayerNorm.bias': (768, ),
    'resizer.fc.weight': (256, 768),
    'subject_perceptron_1.attention.self.query.weight': (256, 256),
    'subject_perceptron_1.intermediate.dense.weight': (3072, 256),
    'subject_perceptron_2.weight': (2, 256),
    'vlfuse_list_context.1.multihead_attn.in_proj_weight': (768, 256),
    'visionlayer_list_subject.0.self_attn.sampling_offsets.weight':
    (256, 256),
    'visionlayer_list_subject.0.linear2.weight': (256, 2048),
    'visionlayer_list_context.1.norm2.bias': (256, ),
    'bertlayer_list_context.0.output.dense.weight': (256, 3072),
    'level_embed_context': (4, 256),
    'level_embed_subject': (4, 256),
    'resizer_subject_v.layer_norm.bias': (128, ),
    'resizer_context_l.fc.weight': (128, 256),
    'input_proj.0.0.weight': (256, 192, 1, 1),
    'input_proj.3.0.weight': (256, 768, 3, 3),
    'input_proj.3.1.weight': (256, ),
    'query_embed.weight': (5, 256),
    'transformer.reference_points.weight': (2, 256),
    'transformer.decoder.layers.3.self_attn.in_proj_weight': (768, 256),
    'transformer.decoder.layers.3.cross_attn.attention_weights.weight':
    (128, 256),
    'transformer.decoder.layers.3.norm3.weight': (256, ),
    'class_embed.3.bias': (1, ),
    'bbox_embed.0.layers.2.weight': (4, 256),
    'pixel_decoder.adapter_1.weight': (256, 96, 1, 1),
    'pixel_decoder.adapter_1.norm.weight': (256, ),
    'pixel_decoder.layer_4.weight': (256, 256, 3, 3),
    'pixel_decoder.cross_attn_2.multihead_attn.out_proj.weight': (256, 256),
    'pixel_decoder.cross_attn_4.linear1.weight': (2048, 256),
    'pixel_decoder.mask_features.bias': (256, ),
    'controller.layers.2.weight': (2153, 256),
}


def _fake_official(model):
    """Official-style state dict built from our model with the inverse
    mapping, plus what the official file also holds."""
    official = dmformer_mm_to_official(model.state_dict())
    for key, value in list(official.items()):
        if key.startswith('bbox_embed.'):  # shared with the decoder
            official['transformer.decoder.' + key] = value.clone()
    official['text_encoder.model.embeddings.position_ids'] = \
        torch.arange(512)[None]
    return official


def test_official_round_trip(paper_model):
    ours = paper_model.state_dict()
    official = _fake_official(paper_model)
    for key, shape in OFFICIAL_NAMES.items():
        assert tuple(official[key].shape) == shape, key
    # Deformable-DETR creation-order norms: norm2 follows self-attention
    assert torch.equal(official['transformer.decoder.layers.1.norm2.weight'],
                       ours['bbox_head.decoder.layers.1.norms.0.weight'])
    assert torch.equal(official['transformer.decoder.layers.1.norm1.bias'],
                       ours['bbox_head.decoder.layers.1.norms.1.bias'])
    assert torch.equal(
        official['pixel_decoder.cross_attn_1.norm3.weight'],
        ours['bbox_head.pixel_decoder.vl_blocks.0.norms.2.weight'])
    assert not any('w_msa' in k or 'stages' in k for k in official)

    converted, report = convert_dmformer_official(official)
    assert list(converted) and set(converted) == set(ours)
    for key, value in ours.items():
        assert torch.equal(converted[key], value), key
    assert len(report.skipped['duplicate of bbox_embed.* (shared module)']) \
        == 4 * 3 * 2
    result = check_state_dict(paper_model, converted)
    assert result.ok and result.matched == len(ours)


def test_official_errors(paper_model):
    official = _fake_official(paper_model)
    bad = OrderedDict(official)
    bad['transformer.decoder.bbox_embed.0.layers.0.bias'] = \
        bad['bbox_embed.0.layers.0.bias'] + 1
    with pytest.raises(ValueError, match='shares the box heads'):
        convert_dmformer_official(bad)
    bad = OrderedDict(official)
    bad['transformer.decoder.layers.0.norm4.weight'] = torch.ones(256)
    with pytest.raises(ValueError, match='norm4'):
        convert_dmformer_official(bad)


def test_official_tool(tiny_model, paper_tiny_cfg, tmp_path, capsys):
    official = _fake_official(tiny_model)
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'mm.pth')
    # official checkpoints also store the argparse namespace
    torch.save(
        dict(model=official, epoch=5, args=argparse.Namespace(lr=1e-4)), src)
    assert official_tool.main([src, dst, '--config', paper_tiny_cfg]) == 0
    assert 'OK' in capsys.readouterr().out
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['source_format'] == 'dmformer-official'
    ours = tiny_model.state_dict()
    assert set(ckpt['state_dict']) == set(ours)
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in ours.items())

    # an official file of a different size does not fit: nothing written
    official['controller.layers.2.weight'] = torch.zeros(3, 64)
    torch.save(dict(model=official), src)
    dst2 = str(tmp_path / 'mm2.pth')
    assert official_tool.main([src, dst2, '--config', paper_tiny_cfg]) == 1
    assert 'shape mismatches: 1' in capsys.readouterr().out
    assert not osp.exists(dst2)


# ---------------------------------------------------------------------------
# GLIP
# ---------------------------------------------------------------------------
def _fake_glip(model, fmt):
    ours = model.state_dict()
    bert = [k for k in ours if k.startswith('language_model.bert.')]
    if fmt == 'official':
        glip = swin_mmdet_to_official(ours, 'backbone.',
                                      'module.backbone.body.')
        lang = 'module.language_backbone.body.model.'
        glip['module.backbone.fpn.fpn_inner2.weight'] = torch.zeros(1)
        glip['module.rpn.head.cls_logits.weight'] = torch.zeros(1)
    else:
        glip = OrderedDict(
            (k, v) for k, v in ours.items() if k.startswith('backbone.'))
        lang = 'language_model.language_backbone.body.model.'
        glip['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
        glip['bbox_head.head.scales.0.scale'] = torch.zeros(1)
    for k in bert:
        glip[lang + k[len('language_model.bert.'):]] = ours[k]
    glip[lang + 'embeddings.position_ids'] = torch.arange(512)[None]
    glip[lang + 'pooler.dense.weight'] = torch.zeros(1)
    return glip


def test_glip_names_by_hand():
    v = torch.zeros(1)
    glip = {
        'module.backbone.body.layers.0.blocks.0.mlp.fc1.weight': v,
        'module.language_backbone.body.model.encoder.layer.0.'
        'attention.self.query.weight': v,
        'module.language_backbone.body.model.pooler.dense.bias': v,
        'module.backbone.fpn.fpn_layer2.weight': v,
    }
    converted, report = convert_glip(glip, 'official')
    assert list(converted) == [
        'backbone.stages.0.blocks.0.ffn.layers.0.0.weight',
        'language_model.bert.encoder.layer.0.attention.self.query.weight'
    ]
    assert sum(len(v) for v in report.skipped.values()) == 2
    with pytest.raises(ValueError, match="'mmdet' format"):
        convert_glip(glip, 'mmdet')
    with pytest.raises(ValueError, match='Unknown GLIP format'):
        convert_glip(glip, 'detectron')


def test_glip_mmdet_format_gives_the_same(tiny_model):
    from_official, _ = convert_glip(_fake_glip(tiny_model, 'official'))
    from_mmdet, report = convert_glip(_fake_glip(tiny_model, 'mmdet'),
                                      'mmdet')
    assert list(from_mmdet) == list(from_official)
    assert all(torch.equal(from_mmdet[k], v) for k, v in from_official.items())
    assert sum(len(v) for v in report.skipped.values()) == 4


def test_glip_tool_and_checker(tiny_model, paper_tiny_cfg, tmp_path,
                               capsys):
    fmt = 'official'
    from mmengine.runner import load_checkpoint
    src, dst = str(tmp_path / 'glip.pth'), str(tmp_path / 'dmformer.pth')
    torch.save(dict(model=_fake_glip(tiny_model, fmt)), src)
    assert glip_tool.main([src, dst, '--format', fmt, '--config',
                           paper_tiny_cfg]) == 0
    out = capsys.readouterr().out
    assert 'missing keys (NOT allowed): 0' in out and 'OK' in out
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['source_format'] == f'glip-{fmt}'
    ours = tiny_model.state_dict()
    provided = {
        k
        for k in ours
        if k.startswith('backbone.') or k.startswith('language_model.bert.')
    }
    assert set(ckpt['state_dict']) == provided

    # `load_from`-style partial loading: provided parts equal the source,
    # the rest keeps its initialisation
    model = build_model_from_config(paper_tiny_cfg)
    nn.init.constant_(model.backbone.patch_embed.projection.weight, 0.)
    before = model.bbox_head.query_embedding.weight.clone()
    load_checkpoint(model, dst, strict=False)
    for key, value in model.state_dict().items():
        if key in provided:
            assert torch.equal(value, ours[key]), key
    assert torch.equal(model.bbox_head.query_embedding.weight, before)

    # the checker: fine with the rest allowed to be missing ...
    allow = ['language_model.resizer', 'neck', 'encoder', 'bbox_head',
             'subject_head']
    assert check_tool.main([paper_tiny_cfg, dst, '--allow-missing'] +
                           allow) == 0
    out = capsys.readouterr().out
    assert 'OK' in out
    # ... fails without, reporting counts per top-level module
    assert check_tool.main([paper_tiny_cfg, dst, '--max-keys', '0']) == 1
    out = capsys.readouterr().out
    n_head = sum(k.startswith('bbox_head.') for k in ours)
    assert f'    bbox_head{n_head:>19}' in out and 'FAILED' in out


def test_checker_unexpected_and_mismatch(tiny_model, paper_tiny_cfg,
                                         tmp_path, capsys):
    ours = tiny_model.state_dict()
    sd = OrderedDict(('module.' + k, v) for k, v in ours.items())
    path = str(tmp_path / 'full.pth')
    torch.save(dict(state_dict=sd), path)
    assert check_tool.main([paper_tiny_cfg, path]) == 0
    capsys.readouterr()

    sd['module.bbox_head.extra.weight'] = torch.zeros(2)
    torch.save(dict(state_dict=sd), path)
    assert check_tool.main([paper_tiny_cfg, path]) == 1
    out = capsys.readouterr().out
    assert 'unexpected keys: 1' in out and 'head.extra.weight' in out

    del sd['module.bbox_head.extra.weight']
    sd['module.bbox_head.query_embedding.weight'] = torch.zeros(3, 3)
    torch.save(dict(state_dict=sd), path)
    assert check_tool.main([paper_tiny_cfg, path]) == 1
    out = capsys.readouterr().out
    shape = tuple(ours['bbox_head.query_embedding.weight'].shape)
    assert f'bbox_head.query_embedding.weight: checkpoint (3, 3) vs model ' \
        f'{shape}' in out


class _NotAllowed:
    pass


def test_load_state_dict_from_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_state_dict_from_file(str(tmp_path / 'nope.pth'))
    path = str(tmp_path / 'odd.pth')
    torch.save(dict(model={'a': torch.ones(1)}, extra=_NotAllowed()), path)
    with pytest.raises(ValueError, match='--trust-pickle'):
        load_state_dict_from_file(path)
    assert list(load_state_dict_from_file(path, trust_pickle=True)) == ['a']
    torch.save(dict(model={'a': torch.ones(1), 'b': 3}), path)
    with pytest.raises(ValueError, match="non-tensor entries \\['b'\\]"):
        load_state_dict_from_file(path)
