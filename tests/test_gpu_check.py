"""bench/gpu_check.py on a CPU machine: the no-GPU answer, and its CPU dry run for real.

The dry run exercises what the script adds on top of `kerasnn.devices` (whose own
MirroredStrategy equivalence is tested in test_devices.py): mixed_float16 dtypes of the two
benchmark networks as built, the strategy check on the MNIST-shaped MLP over 2 logical CPUs,
and a SavedModel reloaded in a fresh process that sees no GPU.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import subprocess_env

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


def _run(*args: str) -> tuple[int, dict, str]:
    # CUDA_VISIBLE_DEVICES="" : the same answer on a machine that does have a GPU.
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=subprocess_env(CUDA_VISIBLE_DEVICES=""),
        cwd=SCRIPT.parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout[-2000:], proc.stderr[-3000:])  # ONE JSON object
    return proc.returncode, json.loads(lines[0]), proc.stderr


@pytest.mark.slow
def test_without_a_gpu_it_says_so_and_exits_0():
    code, out, err = _run()
    assert code == 0, err[-3000:]
    assert out["benchmark"] == "gpu_check"
    assert out["gpu"] is False and out["dry_run"] is False
    assert out["message"].startswith("no GPU visible: nothing to measure")
    assert "--cpu-dry-run" in out["message"]
    assert out["devices"]["gpus"] == []
    assert [d["type"] for d in out["devices"]["logical"]] == ["CPU"]
    assert not {"throughput", "mirrored", "export_reload"} & set(out)  # nothing measured
    assert out["versions"]["kerasnn"]


@pytest.mark.slow
def test_cpu_dry_run_runs_every_check_on_cpu_devices():
    code, out, err = _run("--cpu-dry-run")
    assert code == 0, (out.get("failed_checks"), err[-3000:])
    assert out["failed_checks"] == []
    assert out["device"] == "CPU" and out["gpu"] is False and out["dry_run"] is True
    assert "no figure here is a GPU figure" in out["message"]
    assert [d["name"] for d in out["devices"]["logical"]] == ["/device:CPU:0", "/device:CPU:1"]
    assert out["memory_growth"]["gpus"] == []

    # mixed_float16 as built: float16 compute, float32 variables, float32 softmax and output,
    # loss scaling around the arm's own optimizer
    mixed = out["mixed_precision"]
    for arm, inner in (("mnist_mlp", "RMSprop"), ("digits_cnn", "Adam")):
        assert mixed["dtypes"][arm] == {
            "model_policy": "mixed_float16",
            "compute_dtypes": ["float16"],
            "variable_dtypes": ["float32"],
            "output_layer_policy": "float32",
            "output_dtype": "float32",
            "optimizer": "LossScaleOptimizer",
            "inner_optimizer": inner,
        }
    assert any("'mixed_float16' requested but no GPU" in w for w in mixed["configure_warnings"])

    # every configuration of both arms trained and was timed (figures themselves not judged)
    for arm in ("mnist_mlp", "digits_cnn"):
        result = out["throughput"][arm]
        assert sorted(result["configurations"]) == [
            "float32",
            "float32_xla",
            "mixed_float16",
            "mixed_float16_xla",
        ]
        for figures in result["configurations"].values():
            assert figures["samples_per_s"] > 0 and figures["first_epoch_s"] > 0
            assert len(figures["samples_per_s_rounds"]) == result["rounds"] == 1
        assert all(ratio > 0 for ratio in result["ratios"].values())
    assert (
        "recipes/digits_cnn.yaml: 256 digits as 8x8x1 images"
        in (out["throughput"]["digits_cnn"]["setup"])
    )

    # MirroredStrategy over the 2 logical CPUs: 128 per replica, and the same training as one
    # device at that global batch
    strategy = out["mirrored"]
    assert strategy["replicas"] == 2
    assert [d.rsplit("/", 1)[-1] for d in strategy["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert strategy["global_batch_size"] == 256 and strategy["steps_per_execution"] == 1
    assert strategy["throughput"]["mirrored"]["samples_per_s"] > 0
    match = strategy["matches_one_device"]
    assert match["max_weight_diff"] < 1e-5
    assert match["loss"]["mirrored"] == pytest.approx(match["loss"]["one_device"], abs=1e-5)

    # the SavedModel reloaded in a fresh process that sees no GPU predicts the same
    export = out["export_reload"]
    assert export["trained_on"].endswith("device:CPU:0")
    assert export["export"]["format"] == "saved_model"
    reload = export["cpu_reload"]
    assert reload["physical_gpus"] == 0
    assert reload["logical_devices"] == ["/device:CPU:0"]  # a fresh process: no logical split
    assert reload["probe_size"] == 64
    assert reload["max_abs_diff"] <= 1e-5 and reload["within_export_tolerance"] is True
    assert reload["argmax_agreement"] == 1.0
