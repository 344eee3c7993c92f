# DMFormer with GLIP-T's Swin-T and BERT-base, both frozen.
# Parameter count: ~34.7 M trainable of ~171 M (tools/analysis_tools/
# count_params.py). GLIP-T weights are loaded with `load_from` after
# converting them (tools/model_converters/glip_to_dmformer.py); nothing is
# downloaded when the model is built.
embed_dims = 256
num_queries = 5
num_levels = 4

model = dict(
    type='DMFormer',
    data_preprocessor=dict(
        type='RVOSDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # training pads to multiples of 32 (the official collate); the
        # official inference does not pad (inference_ytvos.py): set
        # test_pad_size_divisor=1 for that (see RVOSDataPreprocessor)
        pad_size_divisor=32,
        test_pad_size_divisor=32),
    # GLIP-T Swin-T: strides 4/8/16/32, channels 96/192/384/768
    backbone=dict(
        type='GLIPSwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=False,
        norm_first_output=False,  # GLIP's SWINT-FPN-RETINANET: no norm0
        frozen=True,
        frozen_eval=True,  # eval mode; False = official (drop-path on)
        lang_fusion=None),  # RMHCA, off in the released model
    # GLIP-T's language backbone: BERT-base-uncased, no pooler
    language_model=dict(
        type='BertTextEncoder',
        bert_config=dict(
            vocab_size=30522,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            max_position_embeddings=512,
            type_vocab_size=2),
        vocab_file=None,  # bert-base-uncased vocab shipped offline
        out_channels=embed_dims,
        max_length=256,
        frozen=True,
        frozen_eval=True),
    # 1x1 conv + GN on strides 8/16/32, extra 3x3/2 conv + GN -> stride 64
    neck=dict(
        type='mmdet.ChannelMapper',
        in_channels=[192, 384, 768],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        bias=True,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=num_levels),
    # 1 BERT-style layer + Linear(256, 2): P(token is in the subject)
    subject_head=dict(
        type='SubjectPerceptronHead',
        embed_dims=embed_dims,
        num_heads=8,
        feedforward_channels=3072,
        dropout=0.1,
        # token cross-entropy against the subject labels
        loss_subject=dict(type='SubjectTokenLoss', loss_weight=2.0)),
    # two parallel branches, 2 x [VL fusion, deformable encoder layer,
    # BERT-style text layer] each, 256 -> 128 resizers, concatenated
    encoder=dict(
        type='DecoupledInteraction',
        embed_dims=embed_dims,
        num_levels=num_levels,
        context_branch=dict(num_iters=2),
        subject_branch=dict(num_iters=2)),
    bbox_head=dict(
        type='DMFormerHead',
        num_queries=num_queries,
        embed_dims=embed_dims,
        num_classes=1,
        decoder=dict(  # mmdet DeformableDetrTransformerDecoder
            num_layers=4,
            return_intermediate=True,
            post_norm_cfg=None,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=embed_dims,
                    num_heads=8,
                    dropout=0.1,
                    batch_first=True),
                cross_attn_cfg=dict(
                    embed_dims=embed_dims,
                    num_levels=num_levels,
                    num_heads=8,
                    num_points=4,
                    dropout=0.1,
                    batch_first=True),
                ffn_cfg=dict(
                    embed_dims=embed_dims,
                    feedforward_channels=2048,
                    num_fcs=2,
                    ffn_drop=0.1,
                    act_cfg=dict(type='ReLU', inplace=True)))),
        pixel_decoder=dict(
            type='CrossModalFPNDecoder',
            in_channels=(96, embed_dims, embed_dims, embed_dims),
            conv_dim=256,
            mask_dim=256,
            num_heads=8,
            feedforward_channels=2048,
            dropout=0.1,
            sr_ratios=(8, 4, 2, 1),
            norm_cfg=dict(type='GN', num_groups=8)),
        mask_head=dict(
            type='DynamicMaskHead',
            in_channels=256,
            controller_layers=3,
            dynamic_mask_channels=8,
            mask_feat_stride=4,
            rel_coord=True),
        loss_cls=dict(
            type='mmdet.FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=5.0),
        loss_iou=dict(type='mmdet.GIoULoss', loss_weight=2.0),
        loss_mask=dict(
            type='mmdet.FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_dice=dict(
            type='mmdet.DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        with_aux_loss=True,
        # mask_upsample='one_step' resizes the stride-4 logits straight to
        # the frame size, as the official inference_ytvos.py (see
        # DMFormerHead.predict_by_feat)
        test_cfg=dict(mask_thr=0.5, mask_upsample='two_step')),
    # matching of the queries to the referent (mmdet's assigner): the
    # class, box and mask costs of ReferFormer
    train_cfg=dict(
        assigner=dict(
            type='VideoQueryMatcher',
            cost_class=2.,
            cost_bbox=5.,
            cost_giou=2.,
            cost_mask=2.,
            cost_dice=5.)),
    # clips of 36 frames for longer videos at test time (Ref-DAVIS protocol;
    # bounded memory); the official code runs Ref-YouTube-VOS videos whole,
    # set clip_len=None for that on videos longer than 36 frames
    test_cfg=dict(clip_len=36))
