"""experiments/arcd/arcd_evidence.sh: every seg_seeds call it makes parses, and every option it
passes names a key that the run's config has (a typo would otherwise surface hours into a queue)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from mmengine.config import Config, DictAction

from experiments.arcd import seg_seeds
from tests.fixtures.seg import REPO
from tests.fixtures.seg_autouse import _mmseg_scope, _one_thread  # noqa: F401

SCRIPT = REPO / "experiments" / "arcd" / "arcd_evidence.sh"


def _seg_seeds():  # noqa: ANN202
    return seg_seeds


def _recorded_calls(tmp_path: Path, *steps: str) -> list[list[str]]:
    log = tmp_path / "calls.jsonl"
    recorder = tmp_path / "recorder"
    recorder.write_text(f"#!{sys.executable}\nimport json, sys\n"
                        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    recorder.chmod(0o755)
    (tmp_path / "patches" / "train").mkdir(parents=True)  # present: the patch step writes nothing
    env = {**os.environ, "PYTHON": str(recorder), "WORK": str(tmp_path / "work"), "PATCHES": str(tmp_path / "patches")}
    subprocess.run(["bash", str(SCRIPT), *steps], check=True, env=env, cwd=tmp_path, capture_output=True)
    return [json.loads(line) for line in log.read_text().splitlines()]


def _cfg_options(items: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    return parser.parse_args(["--cfg-options", *items]).cfg_options


def _has_path(cfg: object, dotted: str) -> bool:
    node = cfg
    for part in dotted.split("."):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return False
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def test_every_call_parses_and_every_option_names_an_existing_key(tmp_path: Path) -> None:
    from defect_plugins.compat import apply_all

    apply_all()
    tool = _seg_seeds()
    calls = _recorded_calls(tmp_path, "all")
    assert len(calls) == 6  # stage1, unet, label 0.3 and 0.5, cam, dlv3p
    checked = 0
    for call in calls:
        assert call[0] == "experiments/arcd/seg_seeds.py"
        args = tool._parser().parse_args(call[1:])
        runs, _pairs, run_options = tool.parse_run_arguments(args)
        for name, config in runs.items():
            items = [*args.cfg_options, *(item for run, item in run_options if run == name)]
            items = [item.replace("{seed}", "0") for item in items]
            cfg = Config.fromfile(str(REPO / config))
            for item in items:
                key = item.partition("=")[0]
                assert _has_path(cfg.to_dict(), key), f"{name} ({config}): no key {key}"
            cfg.merge_from_dict(_cfg_options(items))  # the values parse as the launcher's --cfg-options
            checked += 1
    assert checked == 3 + 2 + 4 + 5 + 2


def test_four_epoch_schedules_and_the_one_stage1_checkpoint(tmp_path: Path) -> None:
    calls = {tuple(c[1:3]): c for c in _recorded_calls(tmp_path, "stage1", "unet")}
    stage1, unet = calls.values()
    assert "train_cfg.max_iters=2212" in stage1 and "param_scheduler.0.milestones=[1769]" in stage1
    assert "val_dataloader.dataset.indices=None" in stage1  # all 975 held-out patches
    assert "train_cfg.max_iters=3128" in unet and "param_scheduler.0.end=3128" in unet
    assert f"arcd_unet:model.reconstructor_checkpoint={tmp_path / 'work'}/stage1/seed0/base" in unet


def test_usage_and_unknown_step(tmp_path: Path) -> None:
    usage = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert usage.returncode == 2 and "STEP" in usage.stdout
    wrong = subprocess.run(["bash", str(SCRIPT), "stage3"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown step 'stage3'" in wrong.stderr


PARALLEL = REPO / "experiments" / "arcd" / "arcd_evidence_parallel.sh"


def _run_parallel(tmp_path: Path, *chains: str, fail_seed: str | None = None) -> tuple[int, list[list[str]]]:
    log = tmp_path / "calls.jsonl"
    recorder = tmp_path / "recorder"
    fail = f"if {fail_seed!r} in sys.argv and '--seeds' in sys.argv " \
           f"and len(sys.argv) > sys.argv.index('--seeds') + 2 " \
           f"and sys.argv[sys.argv.index('--seeds') + 2].startswith('--'): sys.exit(3)\n" if fail_seed else ""
    recorder.write_text(f"#!{sys.executable}\nimport json, sys\n{fail}"
                        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    recorder.chmod(0o755)
    (tmp_path / "patches" / "train").mkdir(parents=True)
    env = {**os.environ, "PYTHON": str(recorder), "WORK": str(tmp_path / "work"), "PATCHES": str(tmp_path / "patches"),
           "SEEDS": "0 1"}
    done = subprocess.run(["bash", str(PARALLEL), *chains], env=env, cwd=tmp_path, capture_output=True, text=True)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    return done.returncode, calls


def _values(call: list[str], flag: str) -> list[str] | None:
    """The values after ``flag`` up to the next option; None when the call has no ``flag``."""
    if flag not in call:
        return None
    rest = call[call.index(flag) + 1:]
    return rest[:next((i for i, item in enumerate(rest) if item.startswith("--")), len(rest))]


def _seeds(call: list[str]) -> list[str]:
    return _values(call, "--seeds") or []


def test_parallel_runs_each_seed_alone_then_the_tables_over_all_seeds(tmp_path: Path) -> None:
    code, calls = _run_parallel(tmp_path, "unet,cam", "label")
    assert code == 0
    single = [c for c in calls if len(_seeds(c)) == 1]
    tables = [c for c in calls if _seeds(c) == ["0", "1"]]
    # per seed: unet, cam, label 0.3, label 0.5 -> 4 calls; then the same 4 over both seeds, last
    assert sorted(_seeds(c)[0] for c in single) == ["0"] * 4 + ["1"] * 4
    assert len(tables) == 4 and calls[-4:] == tables
    assert all("--no-train" in c for c in tables) and not any("--no-train" in c for c in single)
    assert (tmp_path / "work" / "parallel_logs" / "unet_cam_seed1.log").is_file()


def test_parallel_stops_before_the_tables_when_a_chain_fails(tmp_path: Path) -> None:
    code, calls = _run_parallel(tmp_path, "unet", fail_seed="1")
    assert code == 1
    assert [_seeds(c) for c in calls] == [["0"]]  # seed 1 failed: no table over both seeds


def test_parallel_gives_each_named_run_its_own_process_and_tables_every_run(tmp_path: Path) -> None:
    code, calls = _run_parallel(tmp_path, "label:unet", "cam:calm+cbam")
    assert code == 0
    single = [c for c in calls if len(_seeds(c)) == 1]
    # per seed: label 0.3 and 0.5 for unet alone, cam for calm and cbam together -> 3 calls per seed
    assert sorted((_seeds(c)[0], tuple(_values(c, "--only") or ())) for c in single) == [
        (seed, runs) for seed in "01" for runs in (("calm", "cbam"), ("unet",), ("unet",))]
    tables = calls[len(single):]
    assert len(tables) == 3 and all(_seeds(c) == ["0", "1"] and _values(c, "--only") is None for c in tables)
    assert (tmp_path / "work" / "parallel_logs" / "cam_calm_cbam_seed0.log").is_file()


def test_only_keeps_the_named_runs_with_their_pairs_and_options(tmp_path: Path) -> None:
    tool = _seg_seeds()
    argv = ["unet=a.py", "arcd_unet=b.py", "calm=c.py", "--work-dir", str(tmp_path), "--compare", "arcd_unet:unet",
            "calm:arcd_unet", "--run-options", "arcd_unet:x=1", "calm:x=2"]
    runs, pairs, options = tool.parse_run_arguments(tool._parser().parse_args([*argv, "--only", "calm"]))
    assert runs == {"calm": "c.py"} and pairs == [] and options == [("calm", "x=2")]
    runs, pairs, _ = tool.parse_run_arguments(tool._parser().parse_args([*argv, "--only", "unet", "arcd_unet"]))
    assert list(runs) == ["unet", "arcd_unet"] and pairs == [("arcd_unet", "unet")]
    try:
        tool.parse_run_arguments(tool._parser().parse_args([*argv, "--only", "cbam"]))
    except tool.SeedsError as error:
        assert "--only 'cbam' is not one of the runs" in str(error)
    else:
        raise AssertionError("an unknown --only name must fail")


def test_no_train_reports_finished_runs_and_names_the_missing_ones(tmp_path: Path, monkeypatch, capsys) -> None:
    tool = _seg_seeds()
    monkeypatch.setattr(tool, "train_resumable", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    argv = ["a=x.py", "b=y.py", "--work-dir", str(tmp_path), "--seeds", "0", "1", "--reference", "a", "--no-train"]
    for seed, name in [(0, "a"), (0, "b"), (1, "a")]:
        run = tmp_path / f"seed{seed}" / name
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps(
            {"name": name, "config": "x.py", "seed": seed, "metrics": {"mIoU": 50.0 + seed}, "seconds": 1.0}))
    assert tool.main(argv) == 2
    error = capsys.readouterr().err
    assert "--no-train: not finished under" in error and error.rstrip().endswith(": b seed 1")
    assert not (tmp_path / "results.json").exists()
    (tmp_path / "seed1" / "b").mkdir()
    (tmp_path / "seed1" / "b" / "result.json").write_text(json.dumps(
        {"name": "b", "config": "y.py", "seed": 1, "metrics": {"mIoU": 53.0}, "seconds": 1.0}))
    assert tool.main(argv) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["paired"]["mIoU"]["b - a"]["differences"] == {"0": 0.0, "1": 2.0}
