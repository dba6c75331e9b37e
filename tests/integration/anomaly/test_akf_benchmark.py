"""AKF-RD in an ``anomalib benchmark`` grid next to anomalib's ReverseDistillation: one real benchmark run
(anomalib's CLI through ``python -m defect_plugins.anomaly.benchmark``) on tiny synthetic data.

The pieces it relies on (the metrics, the compat fix ``anomalib_plugin_models``):
tests/unit/anomaly/test_akf_benchmark.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from defect_plugins.data import make_anomaly_dataset

DEFAULT_METRICS = {"image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score"}
AKF = "defect_plugins.anomaly.AkfReverseDistillation"
TINY = {"backbone": "resnet18", "pre_trained": False}


# anomalib's benchmark passes no trainer settings to its Engine (Lightning's default, 1000 epochs,
# unless the model's trainer_arguments say otherwise): the run below limits it to one short epoch.
BENCHMARK_SCRIPT = """
import functools, sys
from defect_plugins.compat import apply_all
apply_all()
assert "anomalib.models" not in sys.modules  # the fix waits for anomalib's own import (the finder path)
from anomalib.pipelines.benchmark import job
job.Engine = functools.partial(job.Engine, max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                               enable_progress_bar=False, enable_model_summary=False)
from defect_plugins.anomaly.benchmark import main
main(["--config", sys.argv[1]])
"""


@pytest.mark.slow
def test_anomalib_benchmark_grid_holds_reverse_distillation_and_akf_rd(tmp_path: Path) -> None:
    data = make_anomaly_dataset(tmp_path / "data" / "steel", num_train=4, num_test_good=2, num_test_defect=1,
                                image_size=32, seed=0)
    config = {
        "accelerator": "cpu",
        "benchmark": {
            "seed": 0,
            "model": {
                "class_path": {"grid": ["ReverseDistillation", AKF]},
                "init_args": TINY,  # shared by the grid's models; both resize to 256 px (their default)
            },
            "data": {
                "class_path": "MVTecAD",
                "init_args": {"root": str(data.parent), "category": data.name, "train_batch_size": 4,
                              "eval_batch_size": 8, "num_workers": 0},
            },
        },
    }
    config_file = tmp_path / "benchmark.yaml"
    config_file.write_text(yaml.safe_dump(config))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", BENCHMARK_SCRIPT, str(config_file)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240, check=False)
    elapsed = time.monotonic() - start
    log_file = tmp_path / "runs" / "pipeline.log"
    log = (proc.stdout + proc.stderr)[-3000:] + (log_file.read_text()[-4000:] if log_file.exists() else "")
    assert proc.returncode == 0, log
    assert "There were some errors" not in proc.stdout, log  # anomalib's pipeline swallows job errors
    tables = sorted((tmp_path / "runs" / "benchmark").glob("*/results.csv"))
    assert len(tables) == 1, log
    table = pd.read_csv(tables[0]).set_index("model.class_path")
    assert sorted(table.index) == sorted(["ReverseDistillation", AKF])
    assert DEFAULT_METRICS <= set(table.columns)
    assert table[sorted(DEFAULT_METRICS)].notna().all().all(), table.T
    assert table[sorted(DEFAULT_METRICS)].apply(lambda c: c.between(0, 1)).all().all(), table.T
    assert pd.isna(table.loc["ReverseDistillation", "pixel_AUPRO"]) and 0 <= table.loc[AKF, "pixel_AUPRO"] <= 1
    assert (table["model.init_args.backbone"] == "resnet18").all()
    print(f"benchmark subprocess: {elapsed:.1f} s\n"
          f"{table[[*sorted(DEFAULT_METRICS), 'pixel_AUPRO', 'fit_duration', 'test_duration']].T}")
