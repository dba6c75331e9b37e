"""Running the upstream toolkits' own training and test scripts as this package's commands.

:mod:`.launcher` runs an OpenMMLab toolkit's ``tools/train.py`` / ``tools/test.py`` with the plugin
loaded (``defect-train`` / ``defect-test``, one process or ``torch.distributed.run``); :mod:`.process`
makes child processes die with the command that started them.
"""
