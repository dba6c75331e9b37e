"""AKF-RD in an ``anomalib benchmark`` grid next to anomalib's ReverseDistillation.

Three pieces: AKF-RD's metrics are a superset of anomalib's default evaluator; the compat fix
``anomalib_plugin_models`` lets ``get_model`` import this package's model modules (and no
others) and makes ``BenchmarkJob.collect`` take jobs with different keys; and one real benchmark
run (anomalib's CLI through ``python -m defect_plugins.anomaly.benchmark``) on tiny synthetic data.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from anomalib.models import AnomalibModule, UnknownModelError, get_model
from anomalib.pipelines.benchmark.job import BenchmarkJob

from defect_plugins.anomaly import AkfReverseDistillation
from defect_plugins.compat import anomalib_plugin_models, apply_all
from defect_plugins.data import make_anomaly_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_ALLOWED = {"anomalib.models", "anomalib.models.image", "anomalib.models.video", "anomalib.models.components"}
DEFAULT_METRICS = {"image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score"}
AKF = "defect_plugins.anomaly.AkfReverseDistillation"
TINY = {"backbone": "resnet18", "pre_trained": False}


def _names(evaluator) -> list[str]:
    return [metric.name for metric in evaluator.test_metrics]


def test_akf_metrics_are_anomalibs_default_set_plus_aupro() -> None:
    default = AnomalibModule.configure_evaluator()
    assert set(_names(default)) == DEFAULT_METRICS  # what anomalib's models report (its RD included)
    akf = AkfReverseDistillation.configure_evaluator()
    assert _names(akf) == [*_names(default), "pixel_AUPRO"]
    # the shared metrics are the same metrics: class, fields and strictness
    by_name = {metric.name: metric for metric in akf.test_metrics}
    for metric in default.test_metrics:
        twin = by_name[metric.name]
        assert type(twin) is type(metric)
        assert (twin.fields, twin.strict) == (metric.fields, metric.strict)


def test_get_model_takes_the_plugins_class_path() -> None:
    model = get_model({"class_path": AKF, "init_args": {**TINY, "image_size": [64, 64]}})
    assert isinstance(model, AkfReverseDistillation)
    for module in ("defect_plugins.anomaly.akf_rd", "defect_plugins.anomaly.akf_rd.lightning_model"):
        assert isinstance(get_model({"class_path": f"{module}.AkfReverseDistillation", "init_args": TINY}),
                          AkfReverseDistillation)


def test_allow_list_gains_exactly_the_plugin_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    import anomalib.models

    assert anomalib.models.ALLOWED_MODULES - UPSTREAM_ALLOWED == set(anomalib_plugin_models.PLUGIN_MODULES)
    # get_model re-raises its refusal as a bare UnknownModelError whose cause names the reason
    with pytest.raises(UnknownModelError) as refused:  # any other module is still refused
        get_model({"class_path": "os.path.join"})
    assert "'os.path' is not allowed" in str(refused.value.__cause__)
    # what the fix repairs: upstream's set refuses the plugin
    monkeypatch.setattr(anomalib.models, "ALLOWED_MODULES", set(UPSTREAM_ALLOWED))
    with pytest.raises(UnknownModelError) as refused:
        get_model({"class_path": AKF, "init_args": TINY})
    assert "'defect_plugins.anomaly' is not allowed" in str(refused.value.__cause__)


def test_apply_is_idempotent() -> None:
    import anomalib.models

    before = set(anomalib.models.ALLOWED_MODULES)
    collect = BenchmarkJob.__dict__["collect"]
    assert anomalib_plugin_models.apply() is True
    assert anomalib_plugin_models.apply() is True
    assert anomalib.models.ALLOWED_MODULES == before
    assert BenchmarkJob.__dict__["collect"] is collect
    assert not any(getattr(f, "__defect_plugins_hook__", False) for f in sys.meta_path)  # both imported: no hook
    assert apply_all()["anomalib_plugin_models"] is True


def test_collect_takes_every_jobs_columns() -> None:
    rd = {"model.class_path": "ReverseDistillation", **dict.fromkeys(sorted(DEFAULT_METRICS), 0.5)}
    akf = {"model.class_path": AKF, **dict.fromkeys(sorted(DEFAULT_METRICS), 0.6), "pixel_AUPRO": 0.7}
    for results in ([rd, akf], [akf, rd]):  # upstream: KeyError one way, unequal columns the other
        table = BenchmarkJob.collect(results)
        assert len(table) == 2
        assert set(table.columns) == set(akf)
        assert table[sorted(DEFAULT_METRICS)].notna().all().all()
        assert table.set_index("model.class_path")["pixel_AUPRO"].isna().to_dict() == {
            "ReverseDistillation": True, AKF: False,
        }
    # jobs with the same keys: upstream's table, unchanged
    same = BenchmarkJob.collect([rd, {**rd, "image_AUROC": 0.9}])
    assert list(same.columns) == list(rd) and same["image_AUROC"].tolist() == [0.5, 0.9]


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
