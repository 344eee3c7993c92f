# DMFormer Swin-T fine-tuned on Ref-YouTube-VOS, under the name the method
# was specified with:
#   bash tools/dist_train.sh configs/dmformer_swin_t_ytvos.py 8
# It is dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py unchanged (MMDetection
# naming: 4 GPUs x 1 clip, 6 epochs); both names stay valid. On 8 GPUs the
# total batch is 8: add --auto-scale-lr to scale the learning rate from 4.
_base_ = './dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py'
