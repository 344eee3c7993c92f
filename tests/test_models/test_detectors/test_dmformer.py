# Copyright (c) OpenMMLab. All rights reserved.
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample
from dmformer.utils import register_all_modules

BASE_CFG = 'configs/_base_/models/dmformer_swin-t.py'


def _sample(text, img_shape, num_frames, subject_span=(0, 3)):
    h, w = img_shape
    sample = RVOSDataSample(
        metainfo=dict(
            text=text,
            img_shape=(h, w),
            ori_shape=(h, w),
            video_id='vid',
            exp_id='0'))
    masks = torch.zeros(num_frames, h, w, dtype=torch.bool)
    masks[:, h // 4:h // 2, w // 4:w // 2] = True
    boxes = torch.tensor([[w // 4, h // 4, w // 2, h // 2]] * num_frames,
                         dtype=torch.float32)
    valid = torch.ones(num_frames, dtype=torch.bool)
    valid[-1] = False  # object absent in the last frame
    masks[-1] = False
    boxes[-1] = 0
    sample.gt_instances = InstanceData(masks=masks, bboxes=boxes, valid=valid)
    sample.gt_subject_span = torch.tensor(subject_span)
    return sample


def _batch(num_frames=2):
    torch.manual_seed(0)
    texts = ['the dog jumping over the log on the left', 'a red car']
    shapes = [(96, 128), (70, 100)]
    return dict(
        inputs=[
            torch.randint(0, 256, (num_frames, 3, h, w), dtype=torch.uint8)
            for h, w in shapes
        ],
        data_samples=[
            _sample(t, s, num_frames) for t, s in zip(texts, shapes)
        ])


@pytest.fixture(scope='module')
def default_model():
    register_all_modules()
    cfg = Config.fromfile(BASE_CFG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_default_parameter_counts(default_model):
    trainable = sum(p.numel() for p in default_model.parameters()
                    if p.requires_grad)
    total = sum(p.numel() for p in default_model.parameters())
    # the official model's counts: 34,723,713 trainable, ~171.1 M in total
    assert trainable == 34_723_713
    assert abs(total - 171.1e6) / 171.1e6 < 0.01
    # backbone and BERT are frozen; the resizer on top of BERT is not
    assert not any(p.requires_grad
                   for p in default_model.backbone.parameters())
    assert not any(p.requires_grad
                   for p in default_model.language_model.bert.parameters())


def test_train_cfg_assigner_reaches_the_head(default_model):
    """The paper config's matching costs sit in ``model.train_cfg.assigner``
    (mmdet's place) and build the head's matcher."""
    assigner = default_model.bbox_head.assigner
    assert type(assigner).__name__ == 'VideoQueryMatcher'
    assert (assigner.cost_class, assigner.cost_bbox, assigner.cost_giou,
            assigner.cost_mask, assigner.cost_dice) == (2., 5., 2., 2., 5.)
    assert Config.fromfile(BASE_CFG).model.train_cfg.assigner.cost_dice == 5.


def test_frozen_parts_stay_in_eval_mode(default_model):
    default_model.train()
    assert not default_model.backbone.training
    assert not default_model.language_model.bert.training
    assert default_model.encoder.training and default_model.bbox_head.training


def test_loss_predict_and_gradients(default_model):
    model = copy.deepcopy(default_model)
    model.train()
    data = model.data_preprocessor(_batch(), True)
    losses = model(**data, mode='loss')
    expected = {'loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice',
                'loss_subject'}
    assert expected <= set(losses)
    assert {f'd{i}.loss_mask' for i in range(3)} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())

    # Zero-initialised layers (last box-MLP layers, deformable sampling
    # offsets) block some gradients at step 0: take one step, then every
    # trainable parameter must receive a gradient.
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
        sum(losses.values()).backward()
        optimizer.step()
    no_grad = [
        name for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert no_grad == []

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(_batch(), False)
        results = model(**data, mode='predict')
    assert len(results) == 2
    for result, (h, w) in zip(results, [(96, 128), (70, 100)]):
        pred = result.pred_instances
        assert pred.masks.shape == (2, h, w) and pred.masks.dtype == torch.bool
        assert pred.bboxes.shape == (2, 4)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        # the chosen subject is a substring of the expression
        assert result.metainfo['pred_subject'] in result.metainfo['text']

    with torch.no_grad():
        outs = model(**data, mode='tensor')
    assert outs['all_mask_preds'].shape[:4] == (4, 2, 2, 5)
    assert outs['subject_logits'].shape[-1] == 2


def test_bad_inputs(default_model):
    model = default_model
    model.eval()
    batch = _batch()
    batch['data_samples'][1].set_metainfo(dict(text='   '))
    data = model.data_preprocessor(batch, False)
    with pytest.raises(ValueError, match='Empty or missing expression'):
        model(**data, mode='predict')
    with pytest.raises(ValueError, match=r'\(b, t, 3, H, W\)'):
        model(data['inputs'][0], data['data_samples'][:1], mode='tensor')
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(**data, mode='foo')


@pytest.mark.parametrize('cfg_file,has_subject', [
    ('configs/dmformer/ablations/'
     'dmformer-context-only_swin-t_4xb1-6e_ref-ytvos.py', False),
    ('configs/dmformer/ablations/'
     'dmformer-subject-only_swin-t_4xb1-6e_ref-ytvos.py', True),
])
def test_ablation_configs(cfg_file, has_subject):
    register_all_modules()
    cfg = Config.fromfile(cfg_file)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert model.with_subject_head == has_subject
    model.train()
    losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
    assert ('loss_subject' in losses) == has_subject
    assert all(torch.isfinite(v) for v in losses.values())
    # the remaining branch outputs the full 256-d memory
    branch = model.encoder.subject_branch if has_subject \
        else model.encoder.context_branch
    assert branch is not None


def test_subject_branch_without_subject_head_is_rejected():
    register_all_modules()
    cfg = Config.fromfile(BASE_CFG)
    cfg.model.subject_head = None
    with pytest.raises(ValueError, match='subject_head'):
        MODELS.build(cfg.model)


def test_valid_indices_select_annotated_frames(default_model):
    """A2D-style clips: only ``valid_indices`` frames reach the network."""
    model = default_model
    model.eval()
    batch = _batch(num_frames=3)
    for sample in batch['data_samples']:
        sample.set_metainfo(dict(valid_indices=[1]))
    data = model.data_preprocessor(batch, False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    single = _batch(num_frames=3)
    single['inputs'] = [x[1:2] for x in single['inputs']]
    data_single = model.data_preprocessor(single, False)
    with torch.no_grad():
        expected = model(**data_single, mode='predict')
    for res, exp in zip(results, expected):
        masks = res.pred_instances.masks
        assert masks.shape[0] == 3
        assert not masks[0].any() and not masks[2].any()
        torch.testing.assert_close(masks[1], exp.pred_instances.masks[0])
        torch.testing.assert_close(res.pred_instances.scores[1],
                                   exp.pred_instances.scores[0])

    model.train()
    batch = _batch(num_frames=3)
    for sample in batch['data_samples']:
        sample.set_metainfo(dict(valid_indices=[0]))
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    batch['data_samples'][1].set_metainfo(dict(valid_indices=[2]))
    with pytest.raises(ValueError, match='same valid_indices'):
        model(**model.data_preprocessor(batch, True), mode='loss')


def test_consecutive_calls_reuse_the_visual_features():
    """The expressions of one video, run one after another (the test loop),
    compute the backbone once; the masks and scores are those of a fresh
    run, and new frames or new weights recompute the features."""
    import numpy as np

    from dmformer.apis import inference_clip, init_model

    torch.manual_seed(0)
    model = init_model('configs/dmformer/dmformer_tiny_synthetic.py')
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (40, 60, 3), np.uint8) for _ in range(2)]
    other = [rng.integers(0, 256, (40, 60, 3), np.uint8) for _ in range(2)]
    calls = []
    handle = model.backbone.register_forward_hook(
        lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        inference_clip(model, frames, ['the red circle'])
        kept = inference_clip(model, frames, ['a small blue square'])[0]
        assert len(calls) == 1  # the second sentence reused the features
        inference_clip(model, other, ['a small blue square'])
        assert len(calls) == 2  # other frames: computed again
        model.test_cfg['reuse_visual'] = False
        fresh = inference_clip(model, frames, ['a small blue square'])[0]
        assert len(calls) == 3 and model._visual_cache is None
    finally:
        handle.remove()
        model.test_cfg.pop('reuse_visual')
    assert torch.equal(kept.pred_instances.masks, fresh.pred_instances.masks)
    assert torch.equal(kept.pred_instances.scores,
                       fresh.pred_instances.scores)
    # weights that may change drop the kept features
    inference_clip(model, frames, ['the red circle'])
    assert model._visual_cache is not None
    model.load_state_dict(model.state_dict())
    assert model._visual_cache is None
    inference_clip(model, frames, ['the red circle'])
    model.train()
    assert model._visual_cache is None


def test_stages_compose_and_can_be_overridden(default_model):
    """forward_features = forward_text -> select_subject -> extract_feat ->
    forward_transformer (pre_transformer -> forward_encoder -> pre_decoder
    -> forward_decoder); every stage is a method a subclass (or a patch)
    can replace."""
    model = default_model.eval()
    data = model.data_preprocessor(copy.deepcopy(_batch()), False)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        outs = model.forward_features(inputs, samples)
        text = model.forward_text(samples)
        subject = model.select_subject(text, samples)
        visual = model.extract_feat(inputs, samples, text)
        head_outs = model.forward_transformer(visual, text, subject, samples,
                                              inputs.shape[1])
        encoder_inputs = model.pre_transformer(visual)
        assert encoder_inputs['feat'].shape[:2] == \
            encoder_inputs['feat_mask'].shape
        encoder_outs = model.forward_encoder(encoder_inputs, text, subject,
                                             inputs.shape[1])
        decoder_inputs = model.pre_decoder(encoder_outs, visual,
                                           inputs.shape[1])
        assert decoder_inputs['query'].shape == \
            decoder_inputs['query_pos'].shape
        by_hand = model.forward_decoder(encoder_outs, visual, text, samples,
                                        inputs.shape[1], decoder_inputs)
    for key in ('all_cls_scores', 'all_mask_preds'):
        torch.testing.assert_close(head_outs[key], outs['head_outs'][key],
                                   rtol=0, atol=0)
        torch.testing.assert_close(by_hand[key], outs['head_outs'][key],
                                   rtol=0, atol=0)
    assert outs['subject_char_spans'] == subject['subject_char_spans']

    # a replaced stage is what forward_features runs: the whole caption as
    # the subject changes the subject branch and so the masks
    def whole_caption(text_dict, data_samples):
        out = type(model).select_subject(model, text_dict, data_samples)
        lengths = (~text_dict['word_pad_mask']).sum(-1)
        out['subject_span'] = torch.stack(
            [torch.zeros_like(lengths), lengths], -1)
        return out

    model.select_subject = whole_caption
    try:
        with torch.no_grad():
            changed = model.forward_features(inputs, samples)
    finally:
        del model.select_subject
    assert not torch.equal(changed['head_outs']['all_mask_preds'],
                           outs['head_outs']['all_mask_preds'])


def test_checkpoint_with_the_old_module_names_loads(tmp_path):
    """Checkpoints saved before the modules took mmdet's names
    (``text_encoder``, ``input_proj``, ``neck`` = the interaction, ``head``)
    load unchanged through ``init_model`` (demo, API, the checkpoint check
    of ``tools/test.py``) and MMEngine's loader (``load_from``, the test
    runner), and a current checkpoint is left alone."""
    from collections import OrderedDict

    from mmengine.runner.checkpoint import load_checkpoint

    from dmformer.apis import init_model
    from dmformer.models.utils.ckpt_convert import current_to_legacy_key
    cfg = 'configs/dmformer/dmformer_tiny_synthetic.py'
    torch.manual_seed(0)
    src = init_model(cfg)
    expected = src.state_dict()
    old = OrderedDict(
        (current_to_legacy_key(k), v.clone()) for k, v in expected.items())
    assert {k.split('.')[0] for k in old} >= {
        'text_encoder', 'input_proj', 'neck', 'head', 'backbone'
    }
    assert not any(k.startswith(('language_model.', 'encoder.',
                                 'bbox_head.')) for k in old)
    old_path, new_path = str(tmp_path / 'old.pth'), str(tmp_path / 'new.pth')
    torch.save(dict(state_dict=old, meta=dict()), old_path)
    torch.save(dict(state_dict=expected, meta=dict()), new_path)

    for path in (old_path, new_path):
        # strict: any key left unmatched would be refused
        loaded = init_model(cfg, path).state_dict()
        assert loaded.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(loaded[key], value), (path, key)
    fresh = MODELS.build(Config.fromfile(cfg).model)
    load_checkpoint(fresh, old_path, strict=True, logger='silent')
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, expected[key]), key
