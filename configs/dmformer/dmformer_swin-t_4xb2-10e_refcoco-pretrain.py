# DMFormer pre-training on RefCOCO + RefCOCO+ + RefCOCOg as single frames
# (T = 1, the official recipe of main_pretrain.py): 10 epochs, lr x0.05 after
# epochs 6 and 8, AdamW 1e-4, wd 5e-4, clip 0.1. Validation: cIoU / mIoU on
# RefCOCO val. For pseudo-video pre-training use the dataset config's
# `pseudo_video_train_pipeline` (see the ablation
# ablations/dmformer_swin-t_4xb2-pseudo-video-10e_refcoco-pretrain.py).
_base_ = [
    '../_base_/models/dmformer_swin-t.py',
    '../_base_/datasets/refcoco.py',
    '../_base_/schedules/schedule_pretrain_10e.py',
    '../_base_/default_runtime.py'
]

# GLIP-T's Swin-T + BERT-base (frozen), converted from the official GLIP-T
# file with
#   python tools/model_converters/glip_to_dmformer.py \
#       glip_tiny_model_o365_goldg_cc_sbu.pth checkpoints/glip-t_dmformer.pth
# Training stops at once if it is missing.
load_from = 'checkpoints/glip-t_dmformer.pth'
