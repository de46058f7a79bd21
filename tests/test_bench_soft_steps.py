"""The head-where-read benchmark on a tiny model: both paths train from the same weights on the same batches, so
their losses and log-probabilities agree, and each path is timed twice."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from test_soft import planted, tiny  # noqa: E402, F401  (the fixture builds the tiny model)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals"))

import bench_soft_steps as bench  # noqa: E402


@pytest.mark.parametrize("method", ["prompt-tuning", "lora"])
def test_both_paths_are_timed_twice_and_agree(tiny, method):  # noqa: F811
    from optimizer.models.providers.hf_loading import load_hf

    box = load_hf(tiny[3:], device="cpu")
    row = bench.measure(method, "planted", planted(), box, steps=2, batch=4)
    assert len(row["kept_step_s"]) == len(row["full_step_s"]) == 2
    assert all(s > 0 for s in row["kept_step_s"] + row["full_step_s"] + row["kept_dev_s"] + row["full_dev_s"])
    assert row["max_abs_diff"] < 1e-4


def test_the_reference_is_the_full_head(tiny):  # noqa: F811
    """A wrong reference (here: every label shifted one token) shows as a large difference: the check can fail."""
    from optimizer.models.providers.hf_loading import load_hf

    box = load_hf(tiny[3:], device="cpu")
    original = bench.every_position
    try:
        bench.every_position = lambda model, ids, mask, labels, greedy=False: original(
            model, ids, mask, labels.roll(1, dims=1), greedy)
        row = bench.measure("lora", "planted", planted(), box, steps=1, batch=4)
    finally:
        bench.every_position = original
    assert row["max_abs_diff"] > 1e-2


def test_measuring_needs_the_data(tmp_path, capsys):
    assert bench.main(["--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
