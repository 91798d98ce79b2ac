"""Circuit selection rules and strategies, parameter accounting, fingerprints."""

from __future__ import annotations

import math

import pytest
import torch

from ctsft_runtime.circuits import circuit_params, fingerprint, param_table, select_heads
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.heads import build_head_map, norm_parameters
from ctsft_runtime.models import load_model

SCORES = [[0.5, -0.9, 0.01, float("nan")], [2.0, -0.02, 0.3, 0.0]]
PARAMS = {"total": 1000, "norms": 50, "perHead": [[100] * 4, [100] * 4]}


def test_strategies_and_rules() -> None:
    assert select_heads(SCORES, PARAMS, strategy="circuit", top_k=2) == [(0, 0), (1, 0)]
    assert select_heads(SCORES, PARAMS, strategy="low", top_k=3) == [(0, 2), (1, 1), (1, 3)]
    assert select_heads(SCORES, PARAMS, strategy="circuit", threshold=0.3) == [(0, 0), (1, 0), (1, 2)]
    assert select_heads(SCORES, PARAMS, strategy="low", threshold=0.02) == [(0, 2), (1, 1), (1, 3)]
    # budget 0.3 of 1000 = 300: norms 50 + two heads of 100 fit, a third does not.
    assert select_heads(SCORES, PARAMS, strategy="circuit", budget=0.3) == [(0, 0), (1, 0)]
    r1 = select_heads(SCORES, PARAMS, strategy="random", top_k=3, seed=1)
    assert r1 == select_heads(SCORES, PARAMS, strategy="random", top_k=3, seed=1) and len(r1) == 3
    assert (0, 3) not in r1  # never an unscored head
    assert select_heads(SCORES, PARAMS, strategy="explicit", explicit=[(1, 3), (0, 1), (1, 3)]) == [(0, 1), (1, 3)]
    p = circuit_params([(0, 0), (1, 0)], PARAMS)
    assert p == {"heads": 200, "norms": 50, "trainable": 250, "total": 1000, "fraction": 0.25}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "circuit", "top_k": 8}, "topK"),  # 7 scored heads
        ({"strategy": "circuit", "top_k": 0}, "topK"),
        ({"strategy": "circuit"}, "topK"),
        ({"strategy": "circuit", "top_k": 2, "budget": 0.5}, "topK"),
        ({"strategy": "circuit", "budget": 0.01}, "budget"),
        ({"strategy": "circuit", "budget": 0.12}, "budget"),
        ({"strategy": "random", "threshold": 0.1}, "threshold"),
        ({"strategy": "circuit", "threshold": 99.0}, "threshold"),
        ({"strategy": "explicit", "explicit": [(2, 0)]}, "heads.0"),
        ({"strategy": "explicit", "explicit": []}, "heads"),
    ],
)
def test_bad_rules(kwargs, field) -> None:
    with pytest.raises(BadRequest) as e:
        select_heads(SCORES, PARAMS, **kwargs)
    assert e.value.path == field


def test_param_table_counts_real_slices(tiny_checkpoint) -> None:
    lm = load_model(str(tiny_checkpoint))
    hm = build_head_map(lm.model)
    table = param_table(lm.model, hm)
    d, hd, g = hm.d_model, hm.head_dim, hm.group_size
    # Llama without biases: Q rows (hd×d) + O columns (d×hd) + K and V rows shared by g heads.
    assert table["perHead"][0][0] == 2 * hd * d + (2 * hd * d) // g
    assert table["norms"] == sum(p.numel() for _, p in norm_parameters(lm.model))
    assert table["total"] == sum(p.numel() for p in lm.model.parameters())
    assert not any(math.isnan(x) for row in table["perHead"] for x in row)


def test_fingerprint_tracks_weights(tiny_checkpoint) -> None:
    lm = load_model(str(tiny_checkpoint))
    before = fingerprint(lm.model)
    assert before == fingerprint(load_model(str(tiny_checkpoint)).model)
    with torch.no_grad():
        next(lm.model.parameters()).view(-1)[0] += 1e-3
    after = fingerprint(lm.model)
    assert after["config"] == before["config"] and after["weights"] != before["weights"]
