"""The adaptation grid's compute floor: a trained method's step, dev and test passes measured on a tiny model,
and the floor of a (task, method) as its cells times 100 steps, 4 dev passes and one test pass."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from test_soft import planted, tiny  # noqa: E402, F401  (the fixture builds the tiny model)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals"))

import bench_adaptation_floor as floor  # noqa: E402


@pytest.mark.parametrize("method", ["prompt-tuning", "lora"])
def test_a_method_is_measured_on_its_train_dev_and_test_examples(tiny, method):  # noqa: F811
    from optimizer.models.providers.hf_loading import load_hf

    box = load_hf(tiny[3:], device="cpu")
    task = planted()
    row = floor.measure(method, "planted", task, box, steps=2)
    assert row["step_s"] > 0 and row["dev_pass_s"] > 0 and row["test_pass_s"] > 0
    assert row["step_gflop"] > 0
    assert row["test_n"] == len(task.test)


def test_the_floor_is_cells_times_steps_dev_and_test_passes(tmp_path):
    measured = {"task": "sst2", "method": "lora", "step_s": 1.5, "step_gflop": 150.0, "dev_pass_s": 2.0,
                "test_pass_s": 10.0, "test_n": 872}
    assert floor.floors(measured, 6, 1.2, 50.0) == {
        "cells": 6, "grid_step_s": 1.2, "grid_test_s": 50.0, "train_floor_s": 6 * 100 * 1.5,
        "floor_s": 6 * (150 + 4 * 2.0 + 10.0), "grid_train_floor_s": 6 * 100 * 1.2, "grid_floor_s": 6 * (120 + 50.0)}
    grid = tmp_path / "grid.json"
    cell = {"task": "sst2", "searcher": "lora", "target": "embedded"}
    grid.write_text(json.dumps({"rows": [
        {**cell, "train_s": 100.0, "test_s": 60.0}, {**cell, "train_s": 140.0, "test_s": 80.0},
        {**cell, "train_s": 4000.0, "test_s": 70.0},  # a paused process
        {**cell, "target": "embedded:splade-tiny", "train_s": 20.0},
        {**cell, "searcher": "autoprompt", "train_s": None}]}))
    assert floor.grid_cells(grid) == {("sst2", "lora"): (3, 1.4, 70.0)}
    # --rebuild redoes the floors of the measured rows against the grid, without a model
    out = tmp_path / "floor"
    meta = {"command": "c", "machine": "m", "git_commit": "g", "matmul_gflops": 80.0}
    out.with_suffix(".json").write_text(json.dumps({**meta, "rows": [measured]}))
    assert floor.main(["--rebuild", "--grid", str(grid), "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["train_floor_s"] == 3 * 100 * 1.5 and report["grid_train_floor_s"] == 3 * 100 * 1.4
    assert report["grid_floor_s"] == 3 * (140 + 70.0)
    assert "| sst2 | lora | 1.500 | 150.0 | 100.0 (125%) | 1.400 (107.1) |" in out.with_suffix(".md").read_text()


def test_measuring_needs_the_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        floor.main(["--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "--data-dir" in capsys.readouterr().err


def test_best_dev_steps_come_from_the_grids_runs_archive(tmp_path):
    import io
    import tarfile

    def run(name: str, searcher: str, target: str, dev: dict[int, float]) -> dict[str, str]:
        marks = [json.dumps({"type": "train_checkpoint", "step": s, "dev_acc": a}) for s, a in dev.items()]
        return {f"{name}/config.json": json.dumps({"config": {"searcher": searcher, "target": target}}),
                f"{name}/events.jsonl": "\n".join([json.dumps({"type": "session"}), *marks]) + "\n"}

    files = {**run("a", "lora", "embedded", {25: 0.5, 50: 0.6, 75: 0.6, 100: 0.55}),
             **run("b", "prompt-tuning", "embedded", {25: 0.4, 50: 0.5, 75: 0.7, 100: 0.7}),
             **run("c", "lora", "embedded:splade-tiny", {25: 0.9}), **run("d", "baseline", "embedded", {})}
    archive = tmp_path / "grid_runs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert floor.best_steps(archive) == {50: 1, 75: 1}


def test_soft_answers_scores_through_the_adapter_scorer_with_and_without_reuse(tiny, tmp_path):  # noqa: F811
    import bench_soft_answers

    from optimizer.models.providers.hf_loading import load_hf

    box = load_hf(tiny[3:], device="cpu")
    row = bench_soft_answers.measure("lora", "planted", planted(), box, 2, tmp_path)
    assert row["n"] == len(planted().test) and row["same_answers"]
    assert len(row["off_s"]) == len(row["on_s"]) == 2 and 0 <= row["known"] <= row["n"]
