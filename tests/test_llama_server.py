"""A real OpenAI-compatible peer: llama.cpp's server on 127.0.0.1 serving the embedded GGUF.

`.ci/run` builds llama-cpp-python (with GGML_NATIVE=OFF, see DESIGN notes in the README); the
test is skipped, saying why, where it is not installed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (.ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from optimizer.models.embedded import ensure

    gguf = ensure("smollm2-135m-instruct")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = open(log_path, "w")  # a file, not a pipe: the server logs a lot and would block on a full pipe
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--n_threads", "2", "--n_ctx", "2048"],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with opener.open(f"{url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within 180 s: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_ape_job_against_llama_cpp_server(llama_server, tmp_path):
    from optimizer import optimize

    result = optimize("capitalize_words", target="openai:smollm2", base_url=llama_server, searcher="ape", rounds=1,
                      candidates=3,
                      subsets=1, top_k=1, variations=2, dev_limit=4, test_limit=4, race_min_examples=2,
                      concurrency=2, runs_dir=tmp_path / "runs")
    assert result.status == "complete"
    run_dir = Path(result.run_dir)
    assert {"config.json", "events.jsonl", "result.json"} <= {p.name for p in run_dir.iterdir()}
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "proposal" and e["raw"] for e in events)
    assert result.best.test.n == 4 and 0.0 <= result.best.test.acc <= 1.0
    assert result.usage["target"]["calls"] > 0 and result.usage["target"]["prompt_tokens"] > 0


def test_completion_logprobs_match_the_local_model(llama_server):
    """The same GGUF scored two ways: llama.cpp's generated-token log-probabilities, followed along
    the continuation, against transformers' forward pass over the dequantized weights."""
    from optimizer.models.registry import load_model
    from optimizer.types import GenerateRequest, LogprobRequest

    served = load_model("openai-completions:smollm2", base_url=llama_server)
    local = load_model("embedded")
    context = "The capital of France is"
    [greedy] = local.generate([GenerateRequest(prompt=context, max_tokens=3)])
    request = LogprobRequest(context=context, continuation=greedy.text)
    [remote] = served.logprob([request])
    [exact] = local.logprob([request])
    assert remote.exact and remote.n_tokens == exact.n_tokens == 3
    # -1.666 and -1.648 here (Q4_1 kernels vs dequantized float)
    assert remote.logprob == pytest.approx(exact.logprob, abs=0.15)
    # a continuation the model would not write is only bounded from above, and says so
    [unlikely] = served.logprob([LogprobRequest(context=context, continuation=" purple elephants dancing")])
    assert not unlikely.exact and unlikely.logprob >= exact.logprob - 50


def test_ape_job_scored_by_chat_logprobs(llama_server, tmp_path):
    from optimizer import optimize

    result = optimize("topic", target="openai:smollm2", base_url=llama_server, searcher="ape", rounds=0, candidates=2,
                      subsets=1, dev_limit=3, test_limit=3, race_min_examples=3, scoring="logprob",
                      runs_dir=tmp_path / "runs")
    assert result.status == "complete"
    assert result.best.dev.lp is not None and len(result.best.test_lp) == 3
    assert all(lp <= 0 for lp in result.best.test_lp)
