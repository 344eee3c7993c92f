# Context-only ablation of the tiny synthetic model (same budget and seed):
# no subject perceptron, no subject branch; the context branch outputs all
# 64 channels.
_base_ = './dmformer_tiny_synthetic.py'
model = dict(neck=dict(subject_branch=None), subject_head=None)
