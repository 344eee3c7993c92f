# Ablation: context branch only (a ReferFormer-like interaction). No subject
# perceptron, no subject branch; the context branch outputs all 256 channels.
_base_ = '../dmformer_swin-t_4xb1-6e_ref-ytvos.py'
model = dict(encoder=dict(subject_branch=None), subject_head=None)
