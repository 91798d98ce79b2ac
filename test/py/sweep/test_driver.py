"""The Ray driver's own logic, without a cluster (the TS suite runs it against a real one):
how many workers fit, custom resources parsed, and Ray missing reported as the typed event the
SDK maps to `RayUnavailableError`, before anything else happens."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctsft_runtime.sweep.__main__ import EXIT_RAY_MISSING, _custom, _room

PY_RUNTIME = Path(__file__).resolve().parents[3] / "py_runtime"


def test_room_is_the_scarcest_resource_over_what_one_worker_needs():
    available = {"CPU": 8.0, "GPU": 2.0, "memory": 64e9, "node:10.0.0.1": 1.0}
    assert _room(available, {"CPU": 1, "GPU": 0}) == 8
    assert _room(available, {"CPU": 1, "GPU": 0.5}) == 4
    assert _room(available, {"CPU": 3, "GPU": 0.25}) == 2
    assert _room(available, {"CPU": 1, "GPU": 0, "memory": 40e9}) == 1
    # A resource the cluster lacks (a GPU on a CPU cluster, an unknown custom one) fits none.
    assert _room({"CPU": 2.0}, {"CPU": 1, "GPU": 1}) == 0
    assert _room({"CPU": 2.0}, {"CPU": 1, "accelerator_type:A100": 0.001}) == 0
    # Fractions that add up exactly are not lost to rounding.
    assert _room({"GPU": 1.0}, {"GPU": 0.1}) == 10


def test_custom_resources_are_name_amount_pairs():
    assert _custom(["accelerator_type:A100=0.001", "bigmem=2"]) == {"accelerator_type:A100": 0.001, "bigmem": 2.0}
    assert _custom([]) == {}


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="Ray is importable here")
def test_without_ray_the_driver_says_so_and_exits_3():
    env = {**os.environ, "PYTHONPATH": str(PY_RUNTIME)}
    r = subprocess.run(
        [sys.executable, "-m", "ctsft_runtime.sweep", "--client-key", "x" * 40, "--root", ".", "--max-workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == EXIT_RAY_MISSING, r.stderr
    event = json.loads(r.stdout.strip().splitlines()[-1])
    assert event["type"] == "error" and event["code"] == "ray_missing"
    assert "Ray is not installed" in event["message"]
