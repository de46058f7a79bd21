"""Shared-prefix key/value caching in the local transformers path: the same greedy text and the same
log-probabilities (within 1e-4) as without it, for batches whose rows differ in length after a shared prefix; on a
tiny Llama built here and on the embedded SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.models.providers.prefix import (
    MIN_GROUP,
    MIN_PREFIX,
    PrefixCache,
    common_prefix,
    prefix_groups,
)
from optimizer.models.providers.reuse import GreedyAnswers, RowCache
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


def test_rows_of_several_prompts_and_a_loner_share_one_stacked_batch(tmp_path: Path, monkeypatch):
    """A racing rung's rows run in one batch, each from its own prompt's cached prefix (left-padded to the longest,
    masked), a row with no shared prefix beside them: the same greedy text, and log-probabilities within 1e-4, as
    each row run without the cache."""
    from test_hf_backend import _save_tiny

    import optimizer.models.providers.hf as hf
    from optimizer.models.providers.hf_loading import load_hf

    lm = load_hf(str(_save_tiny(tmp_path, chat=False)), device="cpu")
    heads = ["Say it.\nInput: dog\nOutput: Dog\n\n",
             "Write each word so, as shown below.\nInput: red sun\nOutput: Red Sun\n\n"]
    xs = ["a cat", "the dog ran", "ok", "x y z"]
    gens = [GenerateRequest(prompt=h + f"Input: {x}\nOutput:", max_tokens=8, temperature=0.0, stop=["\n"])
            for x in xs for h in heads] + [GenerateRequest(prompt="Hello", max_tokens=8, temperature=0.0)]
    seen = []
    real = hf.stack_caches

    def spy(parts, lengths, rows):
        seen.append((list(lengths), list(rows)))
        return real(parts, lengths, rows)

    monkeypatch.setattr(hf, "stack_caches", spy)
    plain, cached, again = _both(lm, monkeypatch, lambda: [(g.text, g.completion_tokens) for g in lm.generate(gens)])
    assert plain == cached == again
    lengths, rows = seen[0]
    assert sorted(rows) == [1, 4, 4] and sorted(lengths)[0] == 0 and len(set(lengths)) == 3  # two prefixes, a loner
    assert lm._stackable is True
    seen.clear()
    lps = [LogprobRequest(context=g.prompt, continuation=" " + x.title()) for g, x in zip(gens, xs * 2 + ["hi"])]
    plain, cached, again = _both(lm, monkeypatch, lambda: lm.logprob(lps))
    for a, b, c in zip(plain, cached, again):
        assert abs(a.logprob - b.logprob) < 1e-4 and abs(a.logprob - c.logprob) < 1e-4
        assert (a.n_tokens, a.is_greedy, a.prompt_tokens) == (b.n_tokens, b.is_greedy, b.prompt_tokens)
    assert seen and sorted(seen[0][1]) == [1, 4, 4]  # log-probabilities stacked the same way


def test_stacked_caches_give_each_row_the_logits_of_its_own_prefix(tmp_path: Path):
    """stack_caches on a tiny Llama: the next-token logits of rows continuing two prefixes of different lengths,
    stacked and masked, equal those of each row run alone with its full prompt."""
    from test_hf_backend import _save_tiny

    from optimizer.models.providers.hf_loading import load_hf
    from optimizer.models.providers.prefix import stack_caches, stackable

    lm = load_hf(str(_save_tiny(tmp_path, chat=False)), device="cpu")
    heads = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    own = [[20, 21], [22, 23]]
    with torch.inference_mode():
        caches = [lm.prefixes.get(lm.model, h, 1) for h in heads]
        assert all(stackable(c) for c in caches) and not stackable(object())
        stacked = stack_caches(caches, [len(h) for h in heads], [1, 1])
        width = max(len(h) for h in heads)
        ids = torch.tensor([[0] * (width - len(h)) + h + o for h, o in zip(heads, own)])
        mask = torch.tensor([[0] * (width - len(h)) + [1] * (len(h) + len(o)) for h, o in zip(heads, own)])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, width:]
        got = lm.model(input_ids=ids[:, width:], attention_mask=mask, position_ids=positions,
                       **{lm._cache_kw: stacked}).logits[:, -1]
        for row, (h, o) in enumerate(zip(heads, own)):
            alone = lm.model(input_ids=torch.tensor([h + o])).logits[0, -1]
            assert torch.allclose(got[row], alone, atol=1e-4)


def test_a_model_whose_caches_do_not_stack_runs_each_prefix_in_batches_of_its_own(tmp_path: Path, monkeypatch):
    """When the model's caches cannot be stacked (a sliding-window layer), rows batch by prefix and decode with
    transformers' generate: the same answers, and no stacked batch."""
    from test_hf_backend import _save_tiny

    import optimizer.models.providers.hf as hf
    from optimizer.models.providers.hf_loading import load_hf

    lm = load_hf(str(_save_tiny(tmp_path, chat=False)), device="cpu")
    lm._stackable = False
    monkeypatch.setattr(hf, "stack_caches", lambda *a: pytest.fail("stacked a model whose caches do not stack"))
    monkeypatch.setattr(hf, "greedy_decode", lambda *a, **k: pytest.fail("decoded outside generate"))
    _check(lm, monkeypatch, "Say it.\nInput: dog\nOutput: Dog\n\n",
           [("a cat", "A Cat"), ("the dog ran", "The Dog Ran"), ("ok", "Ok"), ("x y z", "X Y Z")],
           prefixes=["Write it so.\nInput: red sun\nOutput: Red Sun\n\n"])


def _answers_after_log_probabilities(lm, monkeypatch, heads, pairs) -> int:
    """Each prompt's log-probability first, then its answer, as scoring asks: the answers run from the keys and values
    the log-probability pass kept (the prompt's last token only) and equal those of the path without any cache."""
    prompts = [(h + f"Input: {x}\nOutput:", y) for x, y in pairs for h in heads]
    gens = [GenerateRequest(prompt=p, max_tokens=10, temperature=0.0, stop=["\n"]) for p, _ in prompts]
    lps = [LogprobRequest(context=p, continuation=" " + y) for p, y in prompts]
    monkeypatch.setenv("APO_PREFIX_CACHE", "0")
    plain = [(g.text, g.completion_tokens, g.prompt_tokens) for g in lm.generate(gens)]
    plain_lp = lm.logprob(lps)
    assert not lm.rows.has(lm._prompt_ids(gens[0])[:-1])  # nothing kept without the prefix cache
    monkeypatch.setenv("APO_PREFIX_CACHE", "1")
    lm.prefixes, lm.rows, lm.answers = PrefixCache(), RowCache(), GreedyAnswers()
    kept_lp = lm.logprob(lps)
    assert all(lm.rows.has(lm._prompt_ids(g)[:-1]) for g in gens)
    ran = []
    real = lm._generate_batch

    def spy(prompts, requests, shared, *args):
        ran.append([len(p) - n for p, n in zip(prompts, shared)])
        return real(prompts, requests, shared, *args)

    monkeypatch.setattr(lm, "_generate_batch", spy)
    cached = [(g.text, g.completion_tokens, g.prompt_tokens) for g in lm.generate(gens)]
    assert cached == plain
    # each answer was the gold one the log-probability pass found greedy, or ran its last prompt token only
    assert lm.answers.hits + lm.rows.hits == len(gens)
    assert [n for batch in ran for n in batch] == [1] * lm.rows.hits
    for a, b in zip(plain_lp, kept_lp):
        assert abs(a.logprob - b.logprob) < 1e-4 and a.is_greedy == b.is_greedy
    return lm.answers.hits


def test_answers_after_a_log_probability_pass_run_from_its_kept_keys_and_values(tmp_path: Path, monkeypatch):
    from test_hf_backend import _save_tiny

    from optimizer.models.providers.hf_loading import load_hf

    lm = load_hf(str(_save_tiny(tmp_path, chat=False)), device="cpu")
    heads = ["Say it.\nInput: dog\nOutput: Dog\n\n",
             "Write each word so, as shown below.\nInput: red sun\nOutput: Red Sun\n\n"]
    pairs = [("a cat", "A Cat"), ("the dog ran", "The Dog Ran"), ("ok", "Ok"), ("x y z", "X Y Z")]
    _answers_after_log_probabilities(lm, monkeypatch, heads, pairs)


def test_the_row_cache_keeps_at_most_its_tokens_and_drops_the_least_recently_used():
    rows = RowCache(tokens=10)
    layer = [(torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2))]
    rows.put([1, 2, 3, 4, 5, 6], 2, layer)  # 4 own tokens
    rows.put([7, 8, 9, 10, 11, 12], 2, layer)
    assert rows.has([1, 2, 3, 4, 5, 6]) and rows.has([7, 8, 9, 10, 11, 12])
    rows.put([0, 0, 1, 1, 1, 1], 2, layer)  # 12 tokens: the oldest leaves
    assert not rows.has([1, 2, 3, 4, 5, 6]) and rows.has([7, 8, 9, 10, 11, 12]) and rows.has([0, 0, 1, 1, 1, 1])
    rows.put([5] * 20, 2, [(torch.zeros(1, 1, 18, 2),) * 2])  # larger than the whole cache: not kept
    assert not rows.has([5] * 20) and rows.has([0, 0, 1, 1, 1, 1])
    assert rows.cache(None, PrefixCache(), [9, 9], 1) is None  # not kept: the caller runs the prompt


@pytest.mark.slow
def test_the_embedded_model_answers_the_same_from_a_log_probability_pass(monkeypatch):
    from optimizer.models.registry import load_model

    answered = _answers_after_log_probabilities(load_model("embedded"), monkeypatch,
                                                [PREFIX, PREFIX.replace("first letter", "initial")], PAIRS)
    assert answered >= 2  # the model gets some right: those answers cost no forward pass


class _Words:
    """A tokenizer whose token i decodes to WORDS[i] (what known_generation uses of a tokenizer)."""

    WORDS = [" A", " Cat", "\n", "<eos>", ".", " Sat"]

    def decode(self, tokens, skip_special_tokens=True):
        return "".join(self.WORDS[t] for t in tokens if not (skip_special_tokens and t == 3))


def test_a_known_greedy_answer_is_returned_only_where_generation_would_end_right_after_it():
    from optimizer.models.providers.reuse import known_generation

    words = _Words()
    gen = known_generation(words, [3], ((0, 1), 2), ["\n"], 16, 40)  # " A Cat" then a newline
    assert (gen.text, gen.completion_tokens, gen.prompt_tokens) == (" A Cat", 3, 40)
    gen = known_generation(words, [3], ((0, 1), 3), [], 16, 40)  # then the end token, no stop strings
    assert (gen.text, gen.completion_tokens) == (" A Cat", 3)
    assert known_generation(words, [3], ((0, 1), 5), ["\n"], 16, 40) is None  # " Sat" follows: generation goes on
    assert known_generation(words, [3], ((0, 1), 2), [], 16, 40) is None  # a newline ends nothing without a stop
    assert known_generation(words, [3], ((0, 4, 1), 2), ["."], 16, 40) is None  # a stop string inside the answer
    assert known_generation(words, [3], ((0, 1), 2), ["\n"], 2, 40) is None  # the answer and its end need 3 tokens
    assert known_generation(words, [3], ((0, 3, 1), 2), ["\n"], 16, 40) is None  # an end token inside it


def test_apo_logprob_reuse_0_keeps_nothing_from_log_probability_passes(tmp_path: Path, monkeypatch):
    from test_hf_backend import _save_tiny

    from optimizer.models.providers.hf_loading import load_hf

    lm = load_hf(str(_save_tiny(tmp_path, chat=False)), device="cpu")
    head = "Say it.\nInput: dog\nOutput: Dog\n\n"
    lps = [LogprobRequest(context=head + f"Input: {x}\nOutput:", continuation=" " + x.title())
           for x in ("a cat", "the dog ran", "ok", "x y z")]  # enough rows to share their prefix
    ids = [lm._prompt_ids(GenerateRequest(prompt=r.context)) for r in lps]
    monkeypatch.setenv("APO_LOGPROB_REUSE", "0")
    lm.rows, lm.answers = RowCache(), GreedyAnswers()
    lm.logprob(lps)
    assert not any(lm.rows.has(p[:-1]) or lm.answers.get(p) for p in ids)
    monkeypatch.setenv("APO_LOGPROB_REUSE", "1")
    lm.logprob(lps)
    assert all(lm.rows.has(p[:-1]) for p in ids)
