# MGJR with split BatchNorm: the noisy view runs with its own BN running statistics (clean-view statistics,
# used at test time, see clean images only); everything else as mgjr_neu_cls_64.py.
_base_ = ['./mgjr_neu_cls_64.py']
model = dict(split_bn=True)
