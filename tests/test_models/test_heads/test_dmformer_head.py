# Copyright (c) OpenMMLab. All rights reserved.
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample

LN2 = math.log(2.)


def _build(cfg):
    import dmformer.models  # noqa: F401
    return MODELS.build(cfg)


def _tiny_cfg(num_layers=2, dims=32, c4=8, num_queries=3):
    return dict(
        type='DMFormerHead',
        num_queries=num_queries,
        embed_dims=dims,
        decoder=dict(
            num_layers=num_layers,
            return_intermediate=True,
            post_norm_cfg=None,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=dims, num_heads=4, dropout=0.1,
                    batch_first=True),
                cross_attn_cfg=dict(
                    embed_dims=dims,
                    num_levels=4,
                    num_heads=4,
                    num_points=2,
                    dropout=0.1,
                    batch_first=True),
                ffn_cfg=dict(
                    embed_dims=dims, feedforward_channels=64,
                    ffn_drop=0.1))),
        pixel_decoder=dict(
            type='CrossModalFPNDecoder',
            in_channels=(c4, dims, dims, dims),
            conv_dim=dims,
            mask_dim=dims,
            num_heads=4,
            feedforward_channels=64),
        mask_head=dict(type='DynamicMaskHead'))


def _tiny_inputs(b=2, t=2, dims=32, c4=8, pad_hw=(64, 64),
                 img_shapes=((64, 56), (48, 64))):
    """Fake neck outputs for a (B, T, 3, 64, 64) padded batch."""
    torch.manual_seed(0)
    ph, pw = pad_hw
    img_mask = torch.ones(b, ph, pw, dtype=torch.bool)
    for i, (h, w) in enumerate(img_shapes):
        img_mask[i, :h, :w] = False
    # (B, H, W) -> (B*T, H, W)
    img_mask = img_mask.repeat_interleave(t, 0)

    def level_mask(stride):
        size = (ph // stride, pw // stride)
        return F.interpolate(img_mask[None].float(), size=size)[0].bool()

    pix_masks = [level_mask(s) for s in (4, 8, 16, 32)]
    mem_masks = [level_mask(s) for s in (8, 16, 32, 64)]
    spatial_shapes = torch.tensor([m.shape[-2:] for m in mem_masks])
    areas = spatial_shapes.prod(1)
    level_start_index = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])
    valid_ratios = torch.stack([
        torch.stack([(~m[:, 0, :]).sum(1).float() / m.shape[2],
                     (~m[:, :, 0]).sum(1).float() / m.shape[1]], -1)
        for m in mem_masks
    ], 1)
    bt = b * t
    inputs = dict(
        memory=torch.randn(bt, int(areas.sum()), dims),
        memory_pad_mask=torch.cat([m.flatten(1) for m in mem_masks], 1),
        spatial_shapes=spatial_shapes,
        level_start_index=level_start_index,
        valid_ratios=valid_ratios,
        text_embed=torch.randn(b, dims),
        num_frames=t,
        pixel_inputs=dict(
            feats=[torch.randn(bt, c4, ph // 4, pw // 4)],
            mlvl_pad_masks=pix_masks,
            mlvl_pos=[torch.randn(bt, dims, *m.shape[-2:])
                      for m in pix_masks]),
        word_feats=torch.randn(b, 4, dims),
        word_pad_mask=torch.tensor([[False] * 4, [False] * 3 + [True]]),
        text_pos=torch.randn(b, 4, dims),
        img_shapes=list(img_shapes))
    return inputs


def _data_samples(t=2, img_shapes=((64, 56), (48, 64)), pad_hw=(64, 64)):
    samples = []
    for i, (h, w) in enumerate(img_shapes):
        masks = torch.zeros(t, *pad_hw, dtype=torch.bool)
        masks[:, 8:30, 10:40] = True
        bboxes = torch.tensor([10., 8., 40., 30.]).repeat(t, 1)
        valid = torch.ones(t, dtype=torch.bool)
        if i == 1:
            masks[1] = False
            bboxes[1] = 0
            valid[1] = False
        sample = RVOSDataSample(
            metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), batch_input_shape=pad_hw))
        sample.gt_instances = InstanceData(
            masks=masks, bboxes=bboxes, valid=valid)
        samples.append(sample)
    return samples


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_param_counts():
    """The paper config's head (decoder and pixel decoder come from the
    config only: the head has no defaults for them)."""
    from mmengine.config import Config
    cfg = Config.fromfile('configs/_base_/models/dmformer_swin-t.py')
    head = _build(cfg.model.bbox_head)
    assert _num_params(head.decoder) == 6183424
    assert _num_params(head.decoder.layers[0]) == 1545856
    assert _num_params(head.cls_branches) + \
        _num_params(head.reg_branches) == 531476
    assert _num_params(head.query_embedding) + \
        _num_params(head.reference_points_fc) == 1794
    assert _num_params(head.pixel_decoder) == 9489664
    assert _num_params(head.mask_head.controller) == 684905
    assert head.mask_head.num_gen_params == 2153
    assert len(head.cls_branches) == len(head.reg_branches) == 4


def test_decoder_and_pixel_decoder_are_required():
    cfg = _tiny_cfg()
    del cfg['pixel_decoder']
    with pytest.raises(TypeError, match='pixel_decoder'):
        _build(cfg)


def test_init_weights():
    head = _build(_tiny_cfg(num_layers=3))
    head.init_weights()
    for cls_branch in head.cls_branches:
        torch.testing.assert_close(cls_branch.bias,
                                   torch.tensor([-math.log(99.)]))
        torch.testing.assert_close(cls_branch.weight,
                                   head.cls_branches[0].weight)
    for i, reg_branch in enumerate(head.reg_branches):
        last = reg_branch.layers[-1]
        assert torch.all(last.weight == 0)
        expected_bias = torch.tensor([0., 0., -2., -2.]) if i == 0 else \
            torch.zeros(4)
        torch.testing.assert_close(last.bias, expected_bias)
        torch.testing.assert_close(reg_branch.layers[0].weight,
                                   head.reg_branches[0].layers[0].weight)
    assert torch.all(head.reference_points_fc.bias == 0)
    # MSDA's own init after the decoder-wide xavier
    msda = head.decoder.layers[0].cross_attn
    assert torch.all(msda.sampling_offsets.weight == 0)
    assert torch.all(msda.attention_weights.weight == 0)


def test_forward_refinement_semantics():
    head = _build(_tiny_cfg(num_layers=3))
    head.init_weights()
    head.eval()
    inputs = _tiny_inputs()
    with torch.no_grad():
        outs = head(**inputs)
        assert outs['all_cls_scores'].shape == (3, 2, 2, 3, 1)
        assert outs['all_bbox_preds'].shape == (3, 2, 2, 3, 4)
        assert outs['all_mask_preds'].shape == (3, 2, 2, 3, 16, 16)
        # zero last layers: layer 0 keeps the initial (cx, cy) and gets
        # (w, h) = sigmoid(-2); later layers keep that box
        query_pos = head.query_embedding.weight
        init_ref = head.reference_points_fc(query_pos).sigmoid()
        boxes = outs['all_bbox_preds']
        torch.testing.assert_close(boxes[0, ..., :2],
                                   init_ref.expand(2, 2, 3, 2))
        torch.testing.assert_close(
            boxes[0, ..., 2:],
            torch.full((2, 2, 3, 2), 1 / (1 + math.exp(2.))))
        torch.testing.assert_close(boxes[1], boxes[0])

        # box of layer l == the decoder's refined reference of layer l
        for branch in head.reg_branches:
            torch.nn.init.normal_(branch.layers[-1].weight, std=0.1)
        outs = head(**inputs)
        bt = 4
        query = inputs['text_embed'][:, None, None].expand(2, 2, 3, 32)
        _, refs = head.decoder(
            query=query.reshape(bt, 3, 32),
            query_pos=query_pos[None].expand(bt, -1, -1),
            value=inputs['memory'],
            key_padding_mask=inputs['memory_pad_mask'],
            reference_points=init_ref[None].expand(bt, -1, -1),
            spatial_shapes=inputs['spatial_shapes'],
            level_start_index=inputs['level_start_index'],
            valid_ratios=inputs['valid_ratios'],
            reg_branches=head.reg_branches)
        torch.testing.assert_close(outs['all_bbox_preds'],
                                   refs.view(3, 2, 2, 3, 4))


def test_loss_keys_and_gradients():
    head = _build(_tiny_cfg(num_layers=2))
    head.train()
    inputs = _tiny_inputs()
    outs = head(**inputs)
    losses = head.loss_by_feat(outs, _data_samples())
    names = ['loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice']
    assert set(losses) == set(names + ['d0.' + n for n in names])
    for value in losses.values():
        assert value.dim() == 0 and torch.isfinite(value)
    sum(losses.values()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name

    head.with_aux_loss = False
    losses = head.loss_by_feat({k: v.detach()
                                for k, v in outs.items()}, _data_samples())
    assert set(losses) == set(names)


def test_get_targets():
    head = _build(_tiny_cfg())
    sample = RVOSDataSample(metainfo=dict(img_shape=(24, 40)))
    masks = torch.zeros(2, 24, 40, dtype=torch.bool)
    masks[0, 6, 10] = True  # sampled: (6 - 2) / 4 = 1, (10 - 2) / 4 = 2
    masks[0, 5, 5] = True  # between sampling points
    sample.gt_instances = InstanceData(
        masks=masks,
        bboxes=torch.tensor([[4., 8., 20., 16.], [1., 1., 5., 5.]]),
        valid=torch.tensor([True, False]))
    targets = head.get_targets([sample], (8, 12), 2, torch.device('cpu'))
    expected = torch.tensor([[[12 / 40, 12 / 24, 16 / 40, 8 / 24],
                              [0., 0., 0., 0.]]])
    torch.testing.assert_close(targets['gt_bboxes'], expected)
    assert targets['gt_masks'].shape == (1, 2, 8, 12)
    assert targets['gt_masks'].sum() == 1 and targets['gt_masks'][0, 0, 1, 2]
    assert torch.equal(targets['gt_valid'], torch.tensor([[True, False]]))
    assert torch.equal(targets['gt_labels'], torch.tensor([0]))
    with pytest.raises(ValueError, match='larger than the padded input'):
        head.get_targets([sample], (4, 4), 2, torch.device('cpu'))
    with pytest.raises(ValueError, match='GT frames'):
        head.get_targets([sample], (8, 12), 3, torch.device('cpu'))


def test_loss_values_hand_computed():
    """mmdet's losses reproduce ReferFormer's maths on a planted match."""
    head = _build(_tiny_cfg())
    b, t, q, h, w = 1, 2, 2, 2, 2
    cls_scores = torch.zeros(b, t, q, 1)
    bbox_preds = torch.tensor([0.5, 0.5, 0.2, 0.2]).repeat(b, t, q, 1)
    gt_bboxes = torch.tensor([[[0.5, 0.5, 0.4, 0.4], [0., 0., 0., 0.]]])
    bbox_preds[0, 0, 0] = gt_bboxes[0, 0]
    bbox_preds[0, :, 1] = torch.tensor([0.1, 0.1, 0.05, 0.05])
    gt_masks = torch.zeros(b, t, h, w)
    gt_masks[0, 0, 0, :] = 1  # 2 of the 8 clip pixels
    mask_preds = torch.zeros(b, t, q, h, w)
    mask_preds[0, :, 1] = 10. - 20. * gt_masks[0]  # query 1: all wrong
    gt_valid = torch.tensor([[True, False]])
    losses = head.loss_by_feat_single(
        cls_scores,
        bbox_preds,
        mask_preds,
        gt_bboxes=gt_bboxes,
        gt_masks=gt_masks,
        gt_valid=gt_valid,
        gt_labels=torch.zeros(1, dtype=torch.long),
        num_boxes=torch.tensor(1.))
    # focal at p = 0.5: target 1 -> 0.25 * 0.25 * ln2, 0 -> 0.75 * 0.25 ln2;
    # one positive (valid frame 0, matched query 0), three negatives
    expected = dict(
        loss_cls=2 * (0.0625 + 3 * 0.1875) * LN2,
        # frame 0 exact; frame 1 against the zero box: 0.5+0.5+0.2+0.2
        loss_bbox=5 * 1.4,
        # 1 - GIoU: frame 0 -> 0; frame 1 -> 1 + (0.36 - 0.04) / 0.36
        loss_iou=2 * (1 + 0.32 / 0.36),
        # mean over the 8 clip pixels (2 positive, 6 negative)
        loss_mask=2 * (2 * 0.0625 + 6 * 0.1875) * LN2 / 8,
        # 1 - (2 * 0.5 * 2 + 1) / (0.5 * 8 + 2 + 1)
        loss_dice=5 * (1 - 3 / 7))
    for key, value in expected.items():
        torch.testing.assert_close(
            losses[key], torch.tensor(value), rtol=1e-4, atol=1e-5)

    # normalised by num_boxes: everything scales by 1 / 3
    losses3 = head.loss_by_feat_single(
        cls_scores,
        bbox_preds,
        mask_preds,
        gt_bboxes=gt_bboxes,
        gt_masks=gt_masks,
        gt_valid=gt_valid,
        gt_labels=torch.zeros(1, dtype=torch.long),
        num_boxes=torch.tensor(3.))
    for key, value in expected.items():
        torch.testing.assert_close(
            losses3[key], torch.tensor(value / 3), rtol=1e-4, atol=1e-5)


def test_predict_rescale_and_crop():
    head = _build(_tiny_cfg())
    b, t, q, h, w = 1, 2, 3, 8, 12  # padded input 32 x 48
    cls = torch.full((1, b, t, q, 1), -5.)
    cls[0, 0, :, 1] = 2.  # best mean score
    cls[0, 0, 0, 2] = 3.  # best in frame 0 only
    boxes = torch.full((1, b, t, q, 4), 0.1)
    boxes[0, 0, :, 1] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    masks = torch.full((1, b, t, q, h, w), -10.)
    # chosen query: left half of the 6 x 10 valid cells, and the padded
    # columns (which must be cropped away before resizing)
    masks[0, 0, :, 1, :, :5] = 10.
    masks[0, 0, :, 1, :, 10:] = 10.
    masks[0, 0, :, 2] = 10.
    outs = dict(
        all_cls_scores=cls, all_bbox_preds=boxes, all_mask_preds=masks)
    sample = RVOSDataSample(
        metainfo=dict(
            img_shape=(24, 40), ori_shape=(48, 80),
            batch_input_shape=(32, 48)))
    result = head.predict_by_feat(outs, [sample])[0]
    assert result.masks.shape == (2, 48, 80)
    assert result.masks.dtype == torch.bool
    # img column 20 is the edge of the left half -> ori column 40
    assert result.masks[:, :, :36].all()
    assert not result.masks[:, :, 44:].any()
    torch.testing.assert_close(
        result.bboxes, torch.tensor([[20., 12., 60., 36.]]).repeat(2, 1))
    torch.testing.assert_close(result.scores,
                               torch.full((2, ), 1 / (1 + math.exp(-2.))))

    result = head.predict_by_feat(outs, [sample], rescale=False)[0]
    assert result.masks.shape == (2, 24, 40)
    assert result.masks[:, :, :18].all()
    assert not result.masks[:, :, 22:].any()
    torch.testing.assert_close(
        result.bboxes, torch.tensor([[10., 6., 30., 18.]]).repeat(2, 1))
    assert 'mask_probs' not in result

    # probabilities on request (Ref-DAVIS merges objects by probability)
    head.test_cfg['return_mask_probs'] = True
    result = head.predict_by_feat(outs, [sample], rescale=False)[0]
    assert result.mask_probs.dtype == torch.float32
    torch.testing.assert_close(result.masks, result.mask_probs > 0.5)
    assert result.mask_probs[:, :, :18].min() > 0.99


def _one_query_outs(logits):
    """Head outputs whose only query has the mask logits (T, h, w)."""
    t = logits.shape[0]
    return dict(
        all_cls_scores=torch.zeros(1, 1, t, 1, 1),
        all_bbox_preds=torch.full((1, 1, t, 1, 4), 0.5),
        all_mask_preds=logits[None, None, :, None])


def test_predict_one_step_upsample():
    """``mask_upsample='one_step'``: the stride-4 logits covering
    ``img_shape`` (ceil-divided) go to ``ori_shape`` in one bilinear resize,
    as the official ``inference_ytvos.py``; padding cells never leak."""
    head = _build(dict(_tiny_cfg(), test_cfg=dict(mask_upsample='one_step')))
    # the other keys keep their defaults
    assert head.test_cfg == dict(
        mask_thr=0.5, return_mask_probs=False, mask_upsample='one_step')
    head.test_cfg['return_mask_probs'] = True
    # hand-computed geometry: 40 px wide input = 10 cells whose left half is
    # negative; at 80 px the cell centres are 4 + 8 i, so the boundary
    # between cells 4 (x = 36) and 5 (x = 44) falls at x = 40
    logits = torch.full((2, 3, 12), 10.)
    logits[..., :5] = -10.
    logits[..., 10:] = -10.  # padding columns (input padded to 48 px)
    sample = RVOSDataSample(
        metainfo=dict(img_shape=(12, 40), ori_shape=(24, 80)))
    result = head.predict_by_feat(_one_query_outs(logits), [sample])[0]
    assert result.masks.shape == (2, 24, 80)
    assert not result.masks[..., :40].any() and result.masks[..., 40:].all()

    # random logits; img_shape not a multiple of 4: 22 x 38 px -> 6 x 10
    # cells, the last row / column half outside the image
    torch.manual_seed(0)
    logits = torch.randn(2, 8, 12) * 4
    logits[:, 6:] = 100.
    logits[:, :, 10:] = 100.
    sample = RVOSDataSample(
        metainfo=dict(img_shape=(22, 38), ori_shape=(45, 75)))
    outs = _one_query_outs(logits)
    result = head.predict_by_feat(outs, [sample])[0]
    expected = F.interpolate(
        logits[None, :, :6, :10],
        size=(45, 75),
        mode='bilinear',
        align_corners=False)[0].sigmoid()
    assert torch.equal(result.mask_probs, expected)
    assert torch.equal(result.masks, expected > 0.5)
    # without rescale: to img_shape, again in one step
    result = head.predict_by_feat(outs, [sample], rescale=False)[0]
    expected = F.interpolate(
        logits[None, :, :6, :10],
        size=(22, 38),
        mode='bilinear',
        align_corners=False)[0].sigmoid()
    assert torch.equal(result.mask_probs, expected)
    # the per-video padded sizes of a batch-invariant forward do not matter
    result2 = head.predict_by_feat(
        dict(outs, mask_shapes=torch.tensor([[8, 12]])), [sample],
        rescale=False)[0]
    assert torch.equal(result2.mask_probs, result.mask_probs)

    # the default two-step protocol: x4, crop, resize -- another result
    head.test_cfg['mask_upsample'] = 'two_step'
    two = head.predict_by_feat(outs, [sample])[0]
    up = F.interpolate(
        logits[None], size=(32, 48), mode='bilinear',
        align_corners=False)[..., :22, :38]
    expected = F.interpolate(
        up, size=(45, 75), mode='bilinear', align_corners=False)[0].sigmoid()
    assert torch.equal(two.mask_probs, expected)
    one = F.interpolate(
        logits[None, :, :6, :10],
        size=(45, 75),
        mode='bilinear',
        align_corners=False)[0].sigmoid()
    assert (two.mask_probs - one).abs().max() > 1e-2


def test_mask_upsample_is_checked():
    with pytest.raises(ValueError, match='mask_upsample'):
        _build(dict(_tiny_cfg(), test_cfg=dict(mask_upsample='bicubic')))
    head = _build(_tiny_cfg())
    assert head.test_cfg['mask_upsample'] == 'two_step'
    head.test_cfg['mask_upsample'] = 'one-step'
    sample = RVOSDataSample(
        metainfo=dict(img_shape=(8, 8), ori_shape=(8, 8)))
    with pytest.raises(ValueError, match='mask_upsample'):
        head.predict_by_feat(
            _one_query_outs(torch.zeros(1, 2, 2)), [sample])


@pytest.fixture(scope='module')
def tiny_model():
    from mmengine.config import Config

    from dmformer.models.utils.ckpt_convert import current_to_legacy_key
    from dmformer.testing import seeded_parameters
    from dmformer.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(
        Config.fromfile('configs/dmformer/dmformer_tiny_synthetic.py').model)
    seeded_parameters(model, current_to_legacy_key)
    return model.eval()


def _clip(seed, text, shape, ori_shape):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(
        0, 256, (2, 3, *shape), generator=gen, dtype=torch.uint8)
    sample = RVOSDataSample(
        metainfo=dict(
            text=text,
            img_shape=shape,
            ori_shape=ori_shape,
            video_id=f'v{seed}',
            exp_id='0'))
    return frames, sample


# A: 70 x 100 (96 x 128 padded to 32), B: 45 x 61 (64 x 64), at other
# original sizes
CLIP_A = (0, 'the small striped square', (70, 100), (140, 200))
CLIP_B = (1, 'the big orange diamond to the left of the circle', (45, 61),
          (90, 122))


@pytest.mark.parametrize('pad_divisor', [32, 1])
@pytest.mark.parametrize('mask_upsample', ['two_step', 'one_step'])
def test_test_protocols_end_to_end(tiny_model, pad_divisor, mask_upsample):
    """Both paddings x both upsamplings on a batch of two videos of
    different sizes: the dynamic mask head's relative coordinates use each
    video's unpadded ``img_shape``, each video runs at its own ``pad_shape``
    (batch-invariant), masks come out at ``ori_shape``, and one-step masks
    are the official formula applied to the stride-4 logits."""
    model = copy.deepcopy(tiny_model)
    model.data_preprocessor.test_pad_size_divisor = pad_divisor
    model.bbox_head.test_cfg['mask_upsample'] = mask_upsample
    model.bbox_head.test_cfg['return_mask_probs'] = True
    calls = []

    def spy(module, args, out):
        # (query_feats, mask_feats (B, T, C, h, w), ref_points, img_shapes)
        calls.append((tuple(args[1].shape[-2:]),
                      [tuple(map(int, s)) for s in args[3]]))

    model.bbox_head.mask_head.register_forward_hook(spy)
    clips = [_clip(*CLIP_A), _clip(*CLIP_B)]

    def run(*idx):
        batch = dict(
            inputs=[clips[i][0] for i in idx],
            data_samples=[copy.deepcopy(clips[i][1]) for i in idx])
        data = model.data_preprocessor(batch, False)
        with torch.no_grad():
            outs = model(**data, mode='tensor')
            preds = model(**data, mode='predict')
        return data, outs, [p.pred_instances for p in preds]

    data, outs, preds = run(0, 1)
    pad_a, pad_b = ((96, 128), (64, 64)) if pad_divisor == 32 else \
        ((70, 100), (45, 61))
    assert tuple(data['inputs'].shape[-2:]) == pad_a
    assert [s.pad_shape for s in data['data_samples']] == [pad_a, pad_b]
    # relative coordinates: unpadded sizes, never batch_input_shape; the
    # mask features (a canvas of the per-video maps) at stride 4 of A's
    # padded size (ceil-divided, as the backbone pads to its patches)
    assert calls[0] == ((-(-pad_a[0] // 4), -(-pad_a[1] // 4)),
                        [(70, 100), (45, 61)])
    logits = outs['all_mask_preds'][-1]  # (B, T, Q, h, w)
    for i, (clip, pred) in enumerate(zip((CLIP_A, CLIP_B), preds)):
        (h, w), (oh, ow) = clip[2], clip[3]
        assert pred.masks.shape == (2, oh, ow)
        assert pred.masks.dtype == torch.bool
        if mask_upsample == 'one_step':
            expected = F.interpolate(
                logits[i, :, 0][None, :, :-(-h // 4), :-(-w // 4)],
                size=(oh, ow),
                mode='bilinear',
                align_corners=False)[0].sigmoid()
            torch.testing.assert_close(pred.mask_probs, expected)
    # each video alone gets the same prediction (its own pad_shape)
    for i in (0, 1):
        alone = run(i)[2][0]
        torch.testing.assert_close(
            alone.mask_probs, preds[i].mask_probs, atol=1e-4, rtol=0)
        torch.testing.assert_close(
            alone.scores, preds[i].scores, atol=1e-4, rtol=0)


def test_bad_inputs():
    head = _build(_tiny_cfg())
    inputs = _tiny_inputs()
    inputs['num_frames'] = 3
    with pytest.raises(ValueError, match='frames'):
        head(**inputs)
    inputs = _tiny_inputs()
    inputs['img_shapes'] = inputs['img_shapes'][:1]
    with pytest.raises(ValueError, match='img_shapes'):
        head(**inputs)


def _aux_cfg(**kwargs):
    cfg = _tiny_cfg(num_layers=2)
    cfg.update(
        loss_ref_map=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.),
        loss_ref_map_dice=dict(
            type='mmdet.DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=1.),
        loss_query=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=False,
            loss_weight=1.))
    cfg.update(kwargs)
    return cfg


def test_auxiliary_losses_train_only():
    head = _build(_aux_cfg())
    head.train()
    outs = head(**_tiny_inputs())
    # stride-8 level of the 64 x 64 padded input
    assert outs['ref_map_logits'].shape == (2, 2, 8, 8)
    losses = head.loss_by_feat(outs, _data_samples())
    for name in ('loss_ref_map', 'loss_ref_map_dice', 'loss_query',
                 'd0.loss_query'):
        assert name in losses and torch.isfinite(losses[name]), name
    sum(losses.values()).backward()
    assert head.ref_map_fc.weight.grad.abs().sum() > 0

    # predictions never see the map
    head.eval()
    with torch.no_grad():
        assert 'ref_map_logits' not in head(**_tiny_inputs())

    # off by default: the paper head has none of them
    plain = _build(_tiny_cfg(num_layers=2))
    assert not hasattr(plain, 'ref_map_fc')
    plain.train()
    losses = plain.loss_by_feat(plain(**_tiny_inputs()), _data_samples())
    assert not any('ref_map' in k or 'query' in k for k in losses)


def test_auxiliary_loss_values_hand_computed():
    head = _build(_aux_cfg())
    # referring map: logits 0 -> p = 0.5; the GT covers the top-left
    # stride-8 cell exactly (a 2 x 2 block at stride 4)
    gt_masks = torch.zeros(1, 1, 4, 4)
    gt_masks[0, 0, :2, :2] = 1
    losses = head.loss_ref_map_by_feat(torch.zeros(1, 1, 2, 2), gt_masks)
    # BCE at p = 0.5 is ln 2 whatever the target
    torch.testing.assert_close(losses['loss_ref_map'], torch.tensor(LN2))
    # dice: 1 - (2 * 0.5 + 1) / (4 * 0.5 + 1 + 1)
    torch.testing.assert_close(losses['loss_ref_map_dice'],
                               torch.tensor(0.5))

    # query choice: two queries with equal logits -> CE = ln 2 per valid
    # frame; the invalid frame has weight 0; / num_boxes
    b, t, q, h, w = 1, 2, 2, 2, 2
    gt_masks = torch.zeros(b, t, h, w)
    gt_masks[0, 0, 0, :] = 1
    losses = head.loss_by_feat_single(
        torch.zeros(b, t, q, 1),
        torch.tensor([0.5, 0.5, 0.4, 0.4]).repeat(b, t, q, 1),
        torch.zeros(b, t, q, h, w),
        gt_bboxes=torch.tensor([[[0.5, 0.5, 0.4, 0.4], [0., 0., 0., 0.]]]),
        gt_masks=gt_masks,
        gt_valid=torch.tensor([[True, False]]),
        gt_labels=torch.zeros(1, dtype=torch.long),
        num_boxes=torch.tensor(1.))
    torch.testing.assert_close(losses['loss_query'], torch.tensor(LN2))


def test_ref_map_reference():
    with pytest.raises(ValueError, match='loss_ref_map'):
        _build(dict(_tiny_cfg(num_layers=2), ref_map_reference=True))
    head = _build(_aux_cfg(num_queries=2, ref_map_reference=True))
    head.init_weights()
    assert not hasattr(head, 'reference_points_fc')

    # peaks: (B*T, h, w) = (2, 4, 4) map; frame 1 is padded right of
    # column 1 (valid width 2 of 4 cells), where its highest logits are
    ref_map = torch.zeros(2, 4, 4)
    ref_map[0, 1, 2] = 5.  # best: row 1, column 2
    ref_map[0, 3, 0] = 4.  # second: row 3, column 0
    ref_map[1, :, 2:] = 9.  # padding, never chosen
    ref_map[1, 2, 1] = 3.
    ref_map[1, 0, 0] = 2.
    pad_mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    pad_mask[1, :, 2:] = True
    valid_ratios = torch.tensor([[1., 1.], [0.5, 1.]])
    points = head._ref_map_peaks(ref_map, pad_mask, valid_ratios)
    # cell centres, x relative to the valid width
    expected = torch.tensor([[[2.5 / 4, 1.5 / 4], [0.5 / 4, 3.5 / 4]],
                             [[1.5 / 2, 2.5 / 4], [0.5 / 2, 0.5 / 4]]])
    torch.testing.assert_close(points, expected)

    # used at test time as well; no gradient through the peaks
    inputs = _tiny_inputs()
    head.eval()
    with torch.no_grad():
        outs = head(**inputs)
    assert 'ref_map_logits' not in outs
    # a fresh head's first box layer predicts a zero offset: the boxes of
    # decoder layer 0 are centred on the map's peaks
    mem = inputs['memory'][:, :64]  # stride-8 level of 64 x 64: 8 x 8
    with torch.no_grad():
        peaks = head._ref_map_peaks(
            head.ref_map_fc(mem).view(4, 8, 8),
            inputs['pixel_inputs']['mlvl_pad_masks'][1],
            inputs['valid_ratios'][:, 0])
    torch.testing.assert_close(outs['all_bbox_preds'][0, ..., :2],
                               peaks.view(2, 2, 2, 2))
    head.train()
    outs = head(**inputs)
    losses = head.loss_by_feat(outs, _data_samples())
    sum(losses.values()).backward()
    assert head.ref_map_fc.weight.grad.abs().sum() > 0


def test_assigner_from_train_cfg():
    """The matcher is mmdet's ``train_cfg.assigner``; the old ``matcher``
    argument still builds the same matcher, with a deprecation warning,
    and giving both is refused."""
    costs = dict(type='VideoQueryMatcher', cost_class=3., cost_dice=1.)
    head = _build(dict(_tiny_cfg(), train_cfg=dict(assigner=costs)))
    assert head.train_cfg['assigner'] == costs
    assert head.assigner.cost_class == 3. and head.assigner.cost_dice == 1.
    # default: the matcher's own default costs
    assert type(_build(_tiny_cfg()).assigner).__name__ == 'VideoQueryMatcher'
    with pytest.warns(DeprecationWarning, match='train_cfg.assigner'):
        old = _build(dict(_tiny_cfg(), matcher=costs))
    assert old.assigner.cost_class == 3. and old.train_cfg == head.train_cfg
    with pytest.raises(ValueError, match='once'):
        _build(
            dict(_tiny_cfg(), matcher=costs,
                 train_cfg=dict(assigner=costs)))


def test_mask_loss_upsample():
    """``train_cfg.mask_loss_upsample`` scores the logits upsampled as at
    test time against the full-resolution GT, which sees a small object
    that the stride-4 point samples miss entirely."""
    head = _build(
        dict(_tiny_cfg(), train_cfg=dict(mask_loss_upsample=True)))
    assert head.train_cfg['assigner'] == dict(type='VideoQueryMatcher')
    sample = RVOSDataSample(metainfo=dict(img_shape=(6, 7)))
    masks = torch.zeros(1, 6, 7, dtype=torch.bool)
    masks[0, 4:6, 4:7] = True  # 6 pixels, none on a sampling point
    sample.gt_instances = InstanceData(
        masks=masks,
        bboxes=torch.tensor([[4., 4., 7., 6.]]),
        valid=torch.tensor([True]))
    targets = head.get_targets([sample], (2, 2), 1, torch.device('cpu'))
    assert targets['gt_masks'].sum() == 0
    full = targets['gt_masks_full']
    assert full.shape == (1, 1, 8, 8) and full.dtype == torch.float32
    assert torch.equal(full[0, 0, :6, :7], masks[0].float())
    assert full[0, 0, 6:].sum() == 0 and full[0, 0, :, 7:].sum() == 0
    # full masks that the upsampled predictions cannot cover are refused
    big = RVOSDataSample(metainfo=dict(img_shape=(9, 7)))
    big.gt_instances = InstanceData(
        masks=torch.zeros(1, 9, 7, dtype=torch.bool),
        bboxes=torch.zeros(1, 4),
        valid=torch.tensor([True]))
    with pytest.raises(ValueError, match='upsampled'):
        head.get_targets([big], (2, 2), 1, torch.device('cpu'))

    # one query predicting foreground everywhere (logit 10)
    mask_preds = torch.full((1, 1, 1, 2, 2), 10.)
    kwargs = dict(
        cls_scores=torch.zeros(1, 1, 1, 1),
        bbox_preds=torch.tensor([[[[0.5, 0.5, 0.2, 0.2]]]]),
        mask_preds=mask_preds,
        gt_bboxes=targets['gt_bboxes'],
        gt_masks=targets['gt_masks'],
        gt_valid=targets['gt_valid'],
        gt_labels=targets['gt_labels'],
        num_boxes=torch.tensor(1.))
    p = torch.sigmoid(torch.tensor(10.))
    up = head.loss_by_feat_single(**kwargs, gt_masks_full=full)
    # 6 of 64 pixels positive: 1 - (2 * 6p + 1) / (64p + 6 + 1)
    torch.testing.assert_close(up['loss_dice'],
                               5 * (1 - (12 * p + 1) / (64 * p + 7)))
    # -log(1 - p) = softplus(10), -log(p) = softplus(-10)
    focal_neg = 0.75 * p**2 * F.softplus(torch.tensor(10.))
    focal_pos = 0.25 * (1 - p)**2 * F.softplus(torch.tensor(-10.))
    torch.testing.assert_close(up['loss_mask'],
                               2 * (58 * focal_neg + 6 * focal_pos) / 64)
    # the point-sampled target of the same object is empty
    sampled = head.loss_by_feat_single(**kwargs)
    torch.testing.assert_close(sampled['loss_dice'],
                               5 * (1 - 1 / (4 * p + 1)))
    # the other losses do not change
    for key in ('loss_cls', 'loss_bbox', 'loss_iou'):
        torch.testing.assert_close(up[key], sampled[key])

    # whole batch, padded inputs: finite losses that reach every parameter
    head.train()
    outs = head(**_tiny_inputs())
    losses = head.loss_by_feat(outs, _data_samples())
    assert all(torch.isfinite(v) for v in losses.values())
    off = _build(_tiny_cfg())
    off.load_state_dict(head.state_dict())
    # dropout off so that both heads see the same forward
    head.eval(), off.eval()
    outs = head(**_tiny_inputs())
    outs_off = off(**_tiny_inputs())
    losses = head.loss_by_feat(outs, _data_samples())
    losses_off = off.loss_by_feat(outs_off, _data_samples())
    assert not torch.isclose(losses['loss_dice'], losses_off['loss_dice'])
    torch.testing.assert_close(losses['loss_cls'], losses_off['loss_cls'])
    with pytest.raises(ValueError, match='mask_loss_upsample'):
        _build(dict(_tiny_cfg(), train_cfg=dict(mask_loss_upsample=1)))
