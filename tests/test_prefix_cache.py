"""Shared-prefix key/value caching in the local transformers path: the same greedy text and the same
log-probabilities (within 1e-4) as without it, for batches whose rows differ in length after a shared prefix; on a
tiny Llama built here and on the embedded SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.models.providers.prefix import MIN_GROUP, MIN_PREFIX, PrefixCache, common_prefix, prefix_groups
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


def test_rows_of_one_prompt_are_grouped_and_loners_pooled(monkeypatch):
    head = list(range(100, 100 + MIN_PREFIX))  # the shared instruction; each prompt's demonstrations are longer
    rows = {}
    for k in range(3 * MIN_GROUP):  # three prompts' rows interleaved, as a racing rung sends them
        rows[k] = head + [k % 3] * (MIN_PREFIX + 4) + [500 + k]
    rows[100], rows[101] = [7, 8, 9], [1, 2]  # rows that share nothing with any other
    groups = prefix_groups(list(rows), rows)
    assert sorted(map(sorted, groups[:3])) == [[k for k in range(3 * MIN_GROUP) if k % 3 == r] for r in range(3)]
    assert sorted(groups[3]) == [100, 101] and len(groups) == 4
    monkeypatch.setenv("APO_PREFIX_CACHE", "0")
    assert prefix_groups([2, 0, 1], {0: [1], 1: [2], 2: [3]}) == [[2, 0, 1]]  # today's path: one group, as given


def _both(adapter, monkeypatch, run):
    monkeypatch.setenv("APO_PREFIX_CACHE", "0")
    plain = run()
    monkeypatch.setenv("APO_PREFIX_CACHE", "1")
    adapter.prefixes = PrefixCache()
    cached, again = run(), run()  # the second from the kept prefix
    assert adapter.prefixes.misses >= 1 and adapter.prefixes.hits >= 1  # the cache was used
    return plain, cached, again


def _check(adapter, monkeypatch, prefix=PREFIX, pairs=PAIRS, prefixes=()):
    """Generation and log-probabilities equal with and without the cache; ``prefixes``: more prompts whose rows
    interleave with the first's in the same call (a racing rung), each grouped to run from its own prefix."""
    heads = [prefix, *prefixes]
    pairs = [(h, x, y) for x, y in pairs for h in heads]
    gens = [GenerateRequest(prompt=h + f"Input: {x}\nOutput:", max_tokens=12, temperature=0.0, stop=["\n"])
            for h, x, _ in pairs]
    outs = _both(adapter, monkeypatch, lambda: [(g.text, g.completion_tokens, g.prompt_tokens)
                                                for g in adapter.generate(gens)])
    assert outs[0] == outs[1] == outs[2]
    assert adapter.prefixes.misses >= len(heads)  # one prefix per prompt
    lps = [LogprobRequest(context=h + f"Input: {x}\nOutput:", continuation=" " + y) for h, x, y in pairs]
    plain, cached, again = _both(adapter, monkeypatch, lambda: adapter.logprob(lps))
    for a, b, c in zip(plain, cached, again):
        assert abs(a.logprob - b.logprob) < 1e-4 and abs(a.logprob - c.logprob) < 1e-4
        assert (a.n_tokens, a.is_greedy, a.prompt_tokens) == (b.n_tokens, b.is_greedy, b.prompt_tokens)


def test_a_tiny_llama_gives_the_same_answers_with_the_prefix_cache(tmp_path: Path, monkeypatch):
    from test_hf_backend import _save_tiny

    from optimizer.models.providers.hf_loading import load_hf

    lm = load_hf(str(_save_tiny(tmp_path, chat=False)), device="cpu")  # a 96-token window
    assert len(lm.tokenizer("Say it.\nInput: dog\nOutput: Dog\n\n")["input_ids"]) >= 16
    pairs = [("a cat", "A Cat"), ("the dog ran", "The Dog Ran"), ("ok", "Ok"), ("x y z", "X Y Z")]
    _check(lm, monkeypatch, "Say it.\nInput: dog\nOutput: Dog\n\n", pairs)
    # two prompts' rows in one call, interleaved: each runs from its own prefix
    _check(lm, monkeypatch, "Say it.\nInput: dog\nOutput: Dog\n\n", pairs,
           prefixes=["Write it so.\nInput: red sun\nOutput: Red Sun\n\n"])


@pytest.mark.slow
def test_the_embedded_model_gives_the_same_answers_with_the_prefix_cache(monkeypatch):
    from optimizer.models.registry import load_model

    _check(load_model("embedded"), monkeypatch, prefixes=[PREFIX.replace("first letter", "initial")])
