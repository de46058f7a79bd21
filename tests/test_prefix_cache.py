"""Shared-prefix key/value caching in the local transformers path: the same greedy text and the same
log-probabilities (within 1e-4) as without it, for batches whose rows differ in length after a shared prefix; on a
tiny Llama built here and on the embedded SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.models.providers.prefix import PrefixCache, common_prefix
from optimizer.types import GenerateRequest, LogprobRequest

torch = pytest.importorskip("torch")

PREFIX = ("Capitalize the first letter of every word.\n\nInput: the quick brown fox\nOutput: The Quick Brown Fox\n\n"
          "Input: hello there world\nOutput: Hello There World\n\n")
PAIRS = [("a cat sat", "A Cat Sat"), ("the dog ran away fast", "The Dog Ran Away Fast"), ("ok", "Ok"),
         ("we went to the big city today and it rained", "We Went To The Big City Today And It Rained"),
         ("x y", "X Y"), ("one two three four", "One Two Three Four")]


def test_common_prefix_leaves_each_row_its_own_tokens():
    assert common_prefix([[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 3, 4, 9]]) == 3
    assert common_prefix([[1, 2, 3], [1, 2, 3]]) == 2  # at least one token of each row stays
    assert common_prefix([[1, 2], [3, 4]]) == 0 and common_prefix([]) == 0


def _both(adapter, monkeypatch, run):
    monkeypatch.setenv("APO_PREFIX_CACHE", "0")
    plain = run()
    monkeypatch.setenv("APO_PREFIX_CACHE", "1")
    adapter.prefixes = PrefixCache()
    cached, again = run(), run()  # the second from the kept prefix
    assert adapter.prefixes.misses >= 1 and adapter.prefixes.hits >= 1  # the cache was used
    return plain, cached, again


def _check(adapter, monkeypatch, prefix=PREFIX, pairs=PAIRS):
    gens = [GenerateRequest(prompt=prefix + f"Input: {x}\nOutput:", max_tokens=12, temperature=0.0, stop=["\n"])
            for x, _ in pairs]
    outs = _both(adapter, monkeypatch, lambda: [(g.text, g.completion_tokens, g.prompt_tokens)
                                                for g in adapter.generate(gens)])
    assert outs[0] == outs[1] == outs[2]
    lps = [LogprobRequest(context=prefix + f"Input: {x}\nOutput:", continuation=" " + y) for x, y in pairs]
    plain, cached, again = _both(adapter, monkeypatch, lambda: adapter.logprob(lps))
    for a, b, c in zip(plain, cached, again):
        assert abs(a.logprob - b.logprob) < 1e-4 and abs(a.logprob - c.logprob) < 1e-4
        assert (a.n_tokens, a.is_greedy, a.prompt_tokens) == (b.n_tokens, b.is_greedy, b.prompt_tokens)


def test_a_tiny_llama_gives_the_same_answers_with_the_prefix_cache(tmp_path: Path, monkeypatch):
    from test_hf_backend import _save_tiny

    from optimizer.models.providers.hf_loading import load_hf

    lm = load_hf(str(_save_tiny(tmp_path, chat=False)), device="cpu")  # a 96-token window
    assert len(lm.tokenizer("Say it.\nInput: dog\nOutput: Dog\n\n")["input_ids"]) >= 16
    _check(lm, monkeypatch, "Say it.\nInput: dog\nOutput: Dog\n\n", [("a cat", "A Cat"), ("the dog ran", "The Dog Ran"),
                                                                      ("ok", "Ok"), ("x y z", "X Y Z")])


@pytest.mark.slow
def test_the_embedded_model_gives_the_same_answers_with_the_prefix_cache(monkeypatch):
    from optimizer.models.registry import load_model

    _check(load_model("embedded"), monkeypatch)
