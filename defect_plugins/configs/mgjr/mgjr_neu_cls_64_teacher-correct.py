# MGJR distilling only on the samples the teacher classifies correctly (the teacher terms are averaged over
# those; the share is logged as distill_fraction); everything else as mgjr_neu_cls_64.py.
_base_ = ['./mgjr_neu_cls_64.py']
model = dict(distill_on='teacher_correct')
