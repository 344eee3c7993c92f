# Subject-only ablation of the main job's recipe
# (dmformer_tiny_synthetic_attr-pretrained.py, same budget and seed): no
# context branch; the subject branch (the words of the chosen subject phrase
# only) outputs all 64 channels.
_base_ = './dmformer_tiny_synthetic_attr-pretrained.py'
model = dict(encoder=dict(context_branch=None))
