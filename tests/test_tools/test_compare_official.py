# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of tools/analysis_tools/compare_official.py.

The pieces that need no official checkout run everywhere (quickly); the end
to end comparison runs only when ``DMFORMER_OFFICIAL_REPO`` names a local
checkout of gaomingqi/DMFormer (it builds two paper-size models, ~1 min on
CPU).
"""
import json
import os
import os.path as osp
import sys

import pytest
import torch

from dmformer.testing import load_script

tool = load_script('tools/analysis_tools/compare_official.py')
OFFICIAL_REPO = os.environ.get('DMFORMER_OFFICIAL_REPO')


def test_not_an_official_checkout(tmp_path, capsys):
    # a directory without models/dmmi.py: one-line error, exit status 2
    assert tool.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith('error: ')
    assert 'not an official DMFormer checkout' in err
    assert 'models/dmmi.py' in err
    assert 'Traceback' not in err
    # not a directory at all
    assert tool.main([str(tmp_path / 'missing')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'is not a directory' in err


def test_check_official_repo_accepts_layout(tmp_path):
    for name in tool.OFFICIAL_FILES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('')
    assert tool.check_official_repo(str(tmp_path)) == str(tmp_path)
    os.remove(tmp_path / 'opts.py')
    with pytest.raises(tool.CompareError, match='opts.py'):
        tool.check_official_repo(str(tmp_path))


def test_missing_package_message():
    with pytest.raises(tool.CompareError) as info:
        tool.check_packages([('not_a_real_package_xyz',
                              'pip install not-a-real-package-xyz')])
    msg = str(info.value)
    assert "'not_a_real_package_xyz'" in msg
    assert 'pip install not-a-real-package-xyz' in msg
    assert '\n' not in msg


def test_diff_stats():
    a = torch.tensor([1., 2., -4.])
    b = torch.tensor([1., 2.5, -4.])
    stats = tool.diff_stats(a, b)
    assert stats['shape'] == [3] and not stats['shape_mismatch']
    assert stats['max_abs'] == pytest.approx(0.5)
    assert stats['max_rel'] == pytest.approx(0.5 / 4)
    same = tool.diff_stats(torch.zeros(2), torch.zeros(2))
    assert same['max_abs'] == 0 and same['max_rel'] == 0
    bad = tool.diff_stats(torch.zeros(2, 3), torch.zeros(3, 2))
    assert bad['shape_mismatch'] and bad['official_shape'] == [3, 2]


def test_diff_table_status_and_format():
    table = tool.DiffTable(tol=1e-4)
    x = torch.randn(2, 3)
    table.add('neck', 'level 0', x, x + 1e-7)
    table.add('encoder', 'memory', x, x + 1., expected='fix: a reason')
    table.add('bbox_head', 'boxes', x, x + 1.)
    table.add('backbone', 'shape', x, x.t())
    table.add_equal('subject_head', 'span', [1, 3], [1, 3])
    table.add_equal('subject_head', 'choice', [1, 3], [2, 3])
    status = [row['status'] for row in table.rows]
    assert status == ['ok', 'fix', 'DIFF', 'DIFF', 'ok', 'DIFF']
    assert table.num_unexpected == 3
    text = table.format()
    lines = text.splitlines()
    assert lines[0].split()[:2] == ['stage', 'output']
    assert 'fix [1]' in text and '[1] fix: a reason' in text
    assert '(2, 3) vs official (3, 2)' in text
    assert '[1, 3] vs official [2, 3]' in text
    # the rows are JSON serialisable (--json)
    json.dumps(table.rows)


def test_standin_modules():
    mods = tool.standin_modules()
    tv = mods['torchvision']
    assert float(tv.__version__[:3]) < 0.7  # util/misc.py's check passes
    assert tv.ops.boxes is mods['torchvision.ops.boxes']
    boxes = torch.tensor([[0., 0., 2., 3.]])
    assert mods['torchvision.ops.boxes'].box_area(boxes).item() == 6
    with pytest.raises(RuntimeError):
        mods['torchvision.models._utils'].IntermediateLayerGetter(None, {})
    layers = mods['timm.models.layers']
    drop = layers.DropPath(0.5).eval()
    x = torch.randn(4, 3)
    assert torch.equal(drop(x), x)
    assert layers.to_2tuple(3) == (3, 3)
    conv = torch.nn.Conv2d(2, 2, 1)
    mods['fvcore.nn.weight_init'].c2_xavier_fill(conv)
    assert torch.count_nonzero(conv.bias) == 0
    msda = mods['MultiScaleDeformableAttention']
    assert callable(msda.ms_deform_attn_forward)
    with pytest.raises(RuntimeError):
        msda.ms_deform_attn_backward()
    for name, mod in mods.items():
        assert mod.__spec__.name == name


def test_official_environment_is_undone(tmp_path):
    (tmp_path / 'models').mkdir()
    (tmp_path / 'models' / '__init__.py').write_text('VALUE = 1\n')
    before = set(sys.modules)
    with tool.official_environment(str(tmp_path)):
        import models  # noqa: F401 (the fake official package)
        assert sys.modules['models'].VALUE == 1
        assert 'MultiScaleDeformableAttention' in sys.modules
    assert 'models' not in sys.modules
    assert 'MultiScaleDeformableAttention' not in sys.modules
    assert str(tmp_path) not in sys.path
    assert not (set(sys.modules) - before) & {'torchvision', 'models'}


def test_offline_bert_tokenizer():
    from transformers import AutoTokenizer, BertConfig
    before = (vars(AutoTokenizer).get('from_pretrained'),
              vars(BertConfig).get('from_pretrained'))
    with tool.offline_bert():
        tok = AutoTokenizer.from_pretrained('bert-base-uncased')
        config = BertConfig.from_pretrained('bert-base-uncased')
    assert config.hidden_size == 768 and config.num_hidden_layers == 12
    ids = tok('the man riding a bike')['input_ids']
    assert tok.convert_ids_to_tokens(ids) == [
        '[CLS]', 'the', 'man', 'riding', 'a', 'bike', '[SEP]'
    ]
    # restored afterwards
    assert (vars(AutoTokenizer).get('from_pretrained'),
            vars(BertConfig).get('from_pretrained')) == before


def test_float_key_padding_mask_hook():
    mha = torch.nn.MultiheadAttention(8, 2)
    mha.register_forward_pre_hook(
        tool._float_key_padding_mask, with_kwargs=True)
    q = torch.randn(3, 1, 8)
    k = torch.randn(4, 1, 8)
    mask = torch.tensor([[1, 1, 1, 0]])  # HF style, 1 = valid
    out, _ = mha(q, k, k, key_padding_mask=mask)
    ref, _ = mha(q, k, k, key_padding_mask=mask.float())
    assert torch.equal(out, ref)
    # all valid: a constant bias, same as no mask
    full, _ = mha(q, k, k, key_padding_mask=torch.ones(1, 4, dtype=torch.long))
    none, _ = mha(q, k, k)
    assert torch.allclose(full, none, atol=1e-6)


def test_official_choice():
    logits = torch.zeros(8, 2)
    logits[1:4, 1] = 1.  # chunk 1, 3 tokens
    logits[5, 1] = 3.  # chunk 2, 1 token: chosen, padded to 3
    span, max_span = tool.official_choice(logits, {1: [1, 2, 3], 2: [5]})
    assert span == (5, 6) and max_span == 3


def test_make_clip_seeded():
    a = tool.make_clip(2, (32, 48), seed=3)
    assert a.shape == (2, 3, 32, 48) and a.dtype == torch.uint8
    assert torch.equal(a, tool.make_clip(2, (32, 48), seed=3))
    x = tool.normalize(a)
    assert x.dtype == torch.float32 and x.shape == a.shape


@pytest.mark.skipif(
    not OFFICIAL_REPO
    or not osp.isfile(osp.join(OFFICIAL_REPO or '', 'models', 'dmmi.py')),
    reason='set DMFORMER_OFFICIAL_REPO to an official checkout')
def test_end_to_end(tmp_path, capsys):
    out = tmp_path / 'cmp.json'
    status = tool.main([
        OFFICIAL_REPO, '--num-frames', '2', '--shape', '64', '96', '--json',
        str(out)
    ])
    text = capsys.readouterr().out
    assert status == 0, text
    result = json.loads(out.read_text())
    rows = result['rows']
    assert rows and all(row['status'] == 'ok' for row in rows), text
    stages = {row['stage'] for row in rows}
    assert {
        'language_model', 'subject_head', 'backbone', 'neck', 'encoder',
        'bbox_head'
    } <= stages
