"""Deployment studies built on ``defect-bench``'s figures: the CPU's practical peak, FLOPs per image, past targets.

These left ``defect_plugins/deploy/benchmark.py``, where they were a second FLOP counter, a
calibration of the machine and the acceptance targets of one past work item inside the product
command. The product's timing (:mod:`defect_plugins.deploy.bench`) is imported, never copied.
"""
