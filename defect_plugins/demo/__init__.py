"""The README's demos.

- :mod:`.full` (``defect-demo``): all three toolkits on the project's synthetic steel, each model
  trained by its toolkit's own runner, exported to OpenVINO and scored there at f32;
- :mod:`.anomaly_only` (``defect-demo-anomaly``): the anomalib part alone, through anomalib's own
  exporter and ``OpenVINOInferencer``;
- :mod:`.runner`: step timing, subprocesses with live progress and logs.
"""
