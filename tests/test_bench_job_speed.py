"""The job-speed benchmark's time breakdown: model time lands in the part it belongs to (a fake model that sleeps
per generation), and the parts add up to the wall time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals"))

import bench_job_speed  # noqa: E402


def test_the_breakdown_puts_model_time_in_its_part(tmp_path):
    out = tmp_path / "speed"
    assert bench_job_speed.main(["--target", "fake:slow", "--tasks", "capitalize_words", "--set",
                                 '{"dev_limit": 6, "test_limit": 5, "confirm_limit": 4}', "--out", str(out)]) == 0
    [row] = json.loads(out.with_suffix(".json").read_text())["rows"]
    parts, requests = row["parts_s"], row["requests"]
    assert abs(sum(parts.values()) - row["wall_s"]) < 0.05
    # the fake model sleeps 0.02 s a generation: each generating part holds at least its requests' sleep
    for part, n in requests.items():
        if part.endswith("generate"):
            assert parts[part] >= 0.02 * n * 0.9, (part, n, parts[part])
    finish = requests.get("finish_generate", 0)
    assert finish >= 5 and requests.get("search_generate", 0) > 0  # the test split is scored after the search
    assert row["scored_examples"] == row["target_calls"]
    assert "| capitalize_words |" in out.with_suffix(".md").read_text()
