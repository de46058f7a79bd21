"""Integration tests on the real embedded model (SmolLM2-135M-Instruct, fetched once from PyPI)."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest

from optimizer import evaluate, optimize

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def test_short_job_writes_complete_run():
    result = optimize("capitalize_words", target="embedded", seed=0, searcher="ape", rounds=1, candidates=3, subsets=1,
                      top_k=1, variations=2, dev_limit=6, test_limit=8, race_min_examples=3)
    run_dir = Path(result.run_dir)
    assert result.status == "complete"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["target"] == "embedded"
    assert config["provenance"]["packages"]["torch"]
    assert config["provenance"]["models"]["target"]["path"].endswith(".gguf")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = {e["type"] for e in events}
    assert {"proposal", "candidate", "score", "rung", "usage", "done"} <= kinds
    stored = json.loads((run_dir / "result.json").read_text())
    assert stored["best"]["test"]["n"] == 8
    for p in [stored["best"], *stored["baselines"]]:
        assert 0.0 <= p["test"]["acc"] <= 1.0 and math.isfinite(p["test"]["lp"])
    assert {b["name"] for b in stored["baselines"]} == {"no_instruction", "best_human"}
    assert result.calls > 0 and result.usage["target"]["calls"] > 0 and result.usage["proposer"]["calls"] > 0


def test_evaluate_ranks_gold_above_wrong_answer():
    good = evaluate("capitalize_words", "Capitalize the first letter of every word.", "embedded", split="dev", limit=4)
    assert good.n == 4 and all(math.isfinite(r["lp"]) for r in good.per_example)
    assert good.acc is not None


def test_readme_python_example_runs(monkeypatch):
    """The README's Python example, executed as written but on a smaller budget."""
    text = (REPO / "README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    assert "optimize(" in code and "evaluate(" in code
    code = code.replace("dev_limit=20)", "sets=2, dev_limit=4, test_limit=4)")
    code = code.replace('split="test")', 'split="test", limit=4)')
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].status == "complete"
    assert namespace["score"].n == 4


def test_gguf_conversion_is_kept_and_loads_identically(tmp_path, monkeypatch):
    """The dequantized copy of a GGUF file gives exactly the same scores and generations."""
    from optimizer.models.embedded import ensure
    from optimizer.models.providers import hf_loading
    from optimizer.types import GenerateRequest, LogprobRequest

    monkeypatch.setattr(hf_loading, "cache_dir", lambda: tmp_path)
    gguf = ensure("smollm2-135m-instruct")
    lp = [LogprobRequest(context="Input: hot\nOutput: cold\n\nInput: up\nOutput:", continuation=" down")]
    gen = [GenerateRequest(prompt="Input: hot\nOutput: cold\n\nInput: up\nOutput:", max_tokens=4, stop=("\n",))]
    seen = []
    for keep in ("0", "1", "1"):  # not kept, kept, then loaded from the kept copy
        monkeypatch.setenv("APO_KEEP_CONVERTED", keep)
        hf_loading.unload_all()
        adapter = hf_loading.load_hf(str(gguf))
        seen.append((adapter.logprob(lp)[0].logprob, adapter.generate(gen)[0].text,
                     adapter.tokenizer("héllo")["input_ids"]))
        copy.deepcopy(adapter.model).float()  # as an adapter's training copy is made: a float model, unmarked
    hf_loading.unload_all()
    converted = list((tmp_path / "converted").iterdir())
    assert len(converted) == 1 and (converted[0] / "config.json").exists()
    assert seen[0][0] == pytest.approx(seen[2][0], abs=1e-4)  # float sums may differ in the last bits
    assert seen[0] == seen[1] and seen[0][1:] == seen[2][1:]
