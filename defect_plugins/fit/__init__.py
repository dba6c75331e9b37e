"""From a user's own images to a model bundle (``defect-fit``; README.md beside this file).

Data: :mod:`.layouts` finds the images (and masks) in a user's folder for each family, or says what is wrong
with it; :mod:`.split` makes the one held-out train / calibration / test split; :mod:`.stage` writes the training
copies at the model's size (letterbox or stretch).
Training, one module per family: :mod:`.anomaly` (anomalib's Engine, ``--model auto``), :mod:`.classifier`
(mmpretrain), :mod:`.segmentor` (mmsegmentation), the last two through :mod:`.openmmlab`. ``--nproc`` /
``--nnodes``: :mod:`.distributed` (torch.distributed.run for the training alone), :mod:`.anomaly_ddp` (an anomalib
worker under Lightning's DDP), :mod:`.rank_hook` (each mmengine process's record).
Evidence: :mod:`.scoring` runs the exported IR on the original files, :mod:`.calibration` sets the threshold for
a false-reject target and gives rates with Clopper-Pearson intervals, :mod:`.evidence` measures both held-out parts.
Output: :mod:`.assemble` (INT8 with its check, IRs with their threshold, card files) and
:mod:`defect_plugins.deploy.bundle`; :mod:`.logs` keeps the terminal to one line per step; :mod:`.cli` is the
command. :mod:`.domain_teacher` trains a domain teacher backbone for anomalib on labelled images
(``defect-teacher``).
"""
