# Context-only ablation of the main job's recipe
# (dmformer_tiny_synthetic_attr-pretrained.py, same budget and seed): no
# subject perceptron, no subject branch; the context branch outputs all 64
# channels.
_base_ = './dmformer_tiny_synthetic_attr-pretrained.py'
model = dict(encoder=dict(subject_branch=None), subject_head=None)
# nothing chooses a subject phrase: no subject accuracy to report
val_evaluator = dict(subject_label_file=None)
test_evaluator = dict(subject_label_file=None)
