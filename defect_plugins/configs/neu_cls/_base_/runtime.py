# Runtime shared by every NEU-CLS config: mmpretrain's own defaults plus the plugin import.
_base_ = ['mmpretrain::_base_/default_runtime.py']

default_scope = 'mmpretrain'
custom_imports = dict(imports=['defect_plugins.cls'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    # Keep the last checkpoint only; results are reported for the final epoch (no selection on test).
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1),
    # a run killed during its final validation validates when resumed (defect_plugins.engine.final_validation)
    final_validation=dict(type='ResumedFinalValidationHook'),
)
# 'nccl' stays for GPU runs; without CUDA, defect_plugins.compat.distributed_cpu switches to gloo.
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0, deterministic=False)
