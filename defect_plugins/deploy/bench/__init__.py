"""``defect-bench``: PyTorch eager, OpenVINO FP32 and OpenVINO INT8 of a model family, measured in one run.

For every family given, the parent process loads the trained model once, exports the FP32 IR and
the INT8 IR (:func:`defect_plugins.deploy.export.export_model`; INT8 goes through the guard, PTQ
then accuracy control, with ``force=True`` so that it can be measured, and the JSON says whether
it is inside the tolerance) and then measures each variant in a fresh child process
(:mod:`.harness`), so that peak memory belongs to that variant alone:

* latency p50/p95 at batch 1 and throughput at the best of the batch sizes tried (:mod:`.timing`:
  PyTorch back-to-back calls; OpenVINO synchronous requests with the ``LATENCY`` hint, then
  ``ov.AsyncInferQueue`` with the ``THROUGHPUT`` hint and OpenVINO's stream count);
* peak resident memory of the child (``VmHWM``), and the same for a child that only imports the
  libraries (``baseline``), so ``peak_rss_over_baseline_mb`` is what the model itself costs;
* model size on disk (PyTorch: its ``state_dict`` saved with ``torch.save``; OpenVINO: .xml + .bin);
* the family's metric on a labelled folder (:func:`defect_plugins.deploy.export.evaluation.evaluate`,
  the INT8 guard's code) and its delta to PyTorch;
* for each OpenVINO IR, the same figures from OpenVINO's own ``benchmark_app`` (same IR,
  precision, performance hint, threads and batch; :mod:`.benchmark_app`), side by side with ours;
* for each OpenVINO IR, the overhead of :class:`defect_plugins.deploy.DefectInferencer` at batch 1
  (:func:`.timing.inferencer_overhead`).

OpenVINO is always compiled with ``INFERENCE_PRECISION_HINT="f32"`` here (INT8 layers run in INT8,
the rest in f32): the bf16 default of this CPU would make FP32 and INT8 incomparable. The
command and the report are :mod:`.cli`. Studies built on these figures (the CPU's practical peak,
FLOPs per image, the targets of a past work item) are in ``experiments/deployment``, not here.
"""
