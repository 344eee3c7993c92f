# Ablation: subject branch only (the sentence still conditions the decoder
# queries through the global sentence feature of the subject branch).
_base_ = '../dmformer_swin-t_4xb1-6e_ref-ytvos.py'
model = dict(encoder=dict(context_branch=None))
