"""bench/gpu.py, the prepared GPU benchmark: its --tiny CPU run end to end, with the packages
the GPU machine may lack (pyzmq, msgspec, peft, accelerate, gguf) made unimportable."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "bench" / "gpu.py"
BLOCKED = ("zmq", "msgspec", "peft", "accelerate", "gguf")

# Runs the script as __main__ with BLOCKED unimportable (and reported absent to
# importlib.util.find_spec, as on a machine that never installed them).
LAUNCHER = f"""
import importlib.util, runpy, sys
BLOCKED = {BLOCKED!r}
_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    return None if name.split(".")[0] in BLOCKED else _find_spec(name, package)
importlib.util.find_spec = find_spec
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"blocked for this test: {{name}}", name=name)
        return None
sys.meta_path.insert(0, Block())
script = sys.argv[1]
sys.argv = sys.argv[1:]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(BLOCKED))
    print("BLOCKED_LOADED=" + ",".join(loaded), file=sys.stderr)
"""


def _load_module():
    sys.path.insert(0, str(ROOT / "py_runtime"))
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, dict, str]:
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(SCRIPT), "--tiny", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last), json.loads(out.read_text()), proc.stderr


def test_tiny_run_reports_every_field(tiny_run) -> None:
    r, from_file, stderr = tiny_run
    assert r == from_file
    loaded = [line for line in stderr.splitlines() if line.startswith("BLOCKED_LOADED=")]
    assert loaded == ["BLOCKED_LOADED="], loaded  # none of BLOCKED was imported
    assert r["complete"] is True and r["errors"] == [], r
    assert r["tiny"] is True and r["dtype"] == "float32"
    for key in ("device_name", "torch", "transformers", "mfu_definition"):
        assert isinstance(r[key], str) and r[key], key
    assert r["env"]["device_type"] == "cpu"
    assert isinstance(r["params"], int) and r["params"] > 0
    assert r["model"]["params"] == r["params"] and 0 < r["model"]["params_nonembedding"] < r["params"]
    assert len(r["circuit"]) == 8 and len({tuple(h) for h in r["circuit"]}) == 8
    assert r["peak_flops"] is None  # CPU: not in the table

    full, ct = r["full"], r["ctsft"]
    for phase in (full, ct):
        for key in ("step_ms_median", "tokens_per_s", "model_flops_per_s", "phase_wall_s"):
            assert _positive(phase[key]), (key, phase[key])
        assert phase["mfu"] is None or _positive(phase["mfu"])
        assert phase["mfu_nonembedding"] is None or _positive(phase["mfu_nonembedding"])
        assert phase["peak_memory"]["bytes"] > 0
        assert phase["loss_finite"] is True
        assert phase["tokens_per_s"] == pytest.approx(phase["batch"] * phase["seq"] * 1e3 / phase["step_ms_median"])
    assert full["trainable_params"] == r["params"]
    assert ct["mechanism"] == "delta" and 0 < ct["trainable_params"] < full["trainable_params"]
    assert ct["optimizer_params"] == ct["trainable_params"]  # delta: state scales with the circuit
    assert _positive(r["ctsft_vs_full"]["tokens_per_s"])

    fw, cdt = r["forward"], r["cdt"]
    assert fw["examples"] == cdt["examples"] == 256
    assert _positive(fw["seconds"]) and _positive(fw["tokens_per_s"])
    assert cdt["sources"] == r["model"]["num_hidden_layers"] * r["model"]["num_attention_heads"]
    assert cdt["complete"] is True and cdt["examples_scored"] == 256
    for key in ("baseline_s", "seconds", "seconds_per_example", "seconds_all_examples", "head_examples_per_s"):
        assert _positive(cdt[key]), (key, cdt[key])
    assert cdt["seconds_all_examples"] == cdt["seconds"]
    assert len(cdt["seconds_per_batch"]) == 256 // cdt["batch"]
    assert cdt["scores_finite"] is True and cdt["oom_retries"] == 0
    assert _positive(r["cdt_vs_forward"])
    assert _positive(r["wall_s"]) and r["wall_s"] < 240


def test_circuit_is_distinct_and_spread() -> None:
    gpu = _load_module()
    full = gpu.circuit(24, 14)
    assert len(set(full)) == 8 and {layer for layer, _ in full} >= {0, 23}
    assert all(0 <= h < 14 for _, h in full)
    for layers, heads in ((2, 4), (2, 2), (1, 8), (3, 3)):
        got = gpu.circuit(layers, heads)
        assert len(got) == len(set(got)) == min(8, layers * heads)
        assert all(0 <= la < layers and 0 <= h < heads for la, h in got)


def test_peak_flops_table() -> None:
    gpu = _load_module()
    assert gpu.peak_for_name("NVIDIA H200") == 989e12
    assert gpu.peak_for_name("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu.peak_for_name("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu.peak_for_name("Tesla T4") is None


def test_no_cuda_without_tiny_is_a_clean_error() -> None:
    gpu = _load_module()
    if gpu.torch.cuda.is_available():
        pytest.skip("CUDA present")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--phases", "full"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "CUDA is not available" in r["error"] and r["complete"] is False
