"""Which prompt ships: the incumbent, the confirmation split, the paired test corrected by step-down max-T."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from test_ape import PLANTED, WORDS, planted_model, reversal_task
from test_demos import GOOD, demo_inputs

from optimizer import optimize
from optimizer.cli.main import main
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.run.selection import holm, max_t, paired_p_value
from optimizer.tasks.task import Task
from optimizer.types import Example


@pytest.fixture(autouse=True)
def fakes():
    register_fake("planted", planted_model)
    register_fake("coin", coin_model)


def test_paired_p_value_is_exact_for_small_samples():
    # five wins and no loss: 1 of the 2^5 sign patterns is as extreme
    assert paired_p_value([1, 1, 1, 1, 1], [0, 0, 0, 0, 0]) == pytest.approx(1 / 32)
    # ties carry no evidence
    assert paired_p_value([1, 0, 1], [1, 0, 1]) == 1.0
    # a worse challenger is not better
    assert paired_p_value([0, 0, 0, 0], [1, 1, 1, 1]) == 1.0
    # six wins and one loss: the sign patterns with at most one loss (1 + 7 of 2^7) are as extreme
    assert paired_p_value([1] * 6 + [0], [0] * 6 + [1]) == pytest.approx(8 / 128)
    # one pair: two sign patterns, the observed one as extreme as itself
    assert paired_p_value([1], [0]) == 0.5 and paired_p_value([0], [1]) == 1.0


def test_holm_adjusts_step_down_and_keeps_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.9, 0.001]) == pytest.approx([0.9, 0.002])


def test_max_t_is_the_sign_flip_test_for_one_finalist_and_costs_nothing_for_copies():
    five = [1.0] * 5 + [0.0] * 15
    assert max_t([five]) == ([1 / 32], [1 / 32])  # exact: the 15 ties carry no sign
    six_one = [1.0] * 6 + [-1.0] + [0.0] * 3
    assert max_t([six_one])[0][0] == pytest.approx(paired_p_value([1] * 6 + [0] + [0] * 3, [0] * 6 + [1] + [0] * 3))
    # three finalists that win on the same examples are one finalist: no penalty (Holm would triple it)
    assert max_t([five, five, five]) == ([1 / 32] * 3, [1 / 32] * 3)
    assert holm([1 / 32] * 3) == pytest.approx([3 / 32] * 3)
    # a finalist that only ties stays at p 1 and changes nothing for the others; one that loses everywhere is 1 too
    raw, adj = max_t([five, [0.0] * 20])
    assert raw[1] == adj[1] == 1.0 and adj[0] == pytest.approx(1 / 32)
    assert max_t([[-1.0] * 5])[1] == [1.0]
    assert max_t([]) == ([], [])


def test_max_t_adjusts_upwards_keeps_order_and_holds_its_level_under_the_null():
    rng = np.random.default_rng(0)
    raw, adj = max_t(rng.integers(-1, 2, size=(4, 40)).tolist(), seed=1)
    assert all(a >= r - 1e-12 for r, a in zip(raw, adj))
    # under the null (no finalist better; the three partly alike) the family-wise error stays at alpha, where the
    # uncorrected p-values of the same families call some finalist better far more often
    corrected = uncorrected = 0
    for _ in range(300):
        shared = rng.integers(-1, 2, size=30)
        rows = [np.where(rng.random(30) < 0.5, shared, rng.integers(-1, 2, size=30)) for _ in range(3)]
        raw, adj = max_t(rows, seed=int(rng.integers(1000)))
        corrected += min(adj) < 0.05
        uncorrected += min(raw) < 0.05
    assert corrected <= 0.07 * 300 and uncorrected >= 1.5 * max(corrected, 10)


def test_a_planted_improvement_ships_with_its_evidence():
    result = optimize(reversal_task(), target="fake:planted", seed=3, searcher="ape", candidates=10, rounds=0)
    sel = result.selection
    assert sel.verdict == "improved" and result.best.text == PLANTED
    assert sel.incumbent_origin == "human" and sel.sizes == {"train": 20, "dev": 12, "confirm": 12, "test": 16}
    win = next(t for t in sel.finalists if t.candidate == result.best.candidate)
    assert win.diff == 1.0 and win.p_adjusted < 0.05 and win.significant
    assert win.p_adjusted >= win.p_value  # the correction never lowers a p-value
    # the test split only reports: the shipped prompt's confirmation score is recorded under its own split
    events = [json.loads(x) for x in open(f"{result.run_dir}/events.jsonl")]
    confirm_ids = {e["example"] for e in events if e["type"] == "score" and e["split"] == "confirm"}
    dev_ids = {e["example"] for e in events if e["type"] == "score" and e["split"] == "dev"}
    assert len(confirm_ids) == 12 and not confirm_ids & dev_ids


def coin_model() -> FakeModel:
    """A target whose right answers depend on nothing but a hash of (instruction, input): pure noise."""

    def answer(prompt: str) -> str:
        instruction = prompt.split("\n")[0]
        word = last_input(prompt)
        lucky = hashlib.sha256(f"{instruction}|{word}".encode()).digest()[0] % 2 == 0
        return word[::-1] if lucky else word

    return FakeModel("fake:coin", proposals=[f"Instruction number {i}." for i in range(40)], answer=answer)


def test_a_noisy_winner_on_dev_is_rejected_on_the_confirmation_set():
    words = [f"{w}{i}" for i, w in enumerate(WORDS * 3)]
    ex = [Example(input=w, output=w[::-1], id=str(i)) for i, w in enumerate(words)]
    task = Task(name="coin", train=ex[:40], dev=ex[40:120], test=ex[120:], metric="exact_match",
                instructions=["Reverse the word."], shots=0)
    result = optimize(task, target="fake:coin", seed=0, searcher="ape", candidates=24, rounds=0, race_min_examples=10,
                      tiebreak_logprob=False)
    sel = result.selection
    rows = {b.name: b for b in result.baselines}
    # racing crowned a candidate that looked better than the incumbent on the raced dev examples ...
    assert rows["best_dev"].dev.acc > rows["best_human"].dev.acc
    # ... but on examples racing never saw it is not significantly better, so the incumbent ships
    assert sel.verdict == "no significant improvement"
    assert result.best.candidate == sel.incumbent and result.best.text == "Reverse the word."
    assert all(not t.significant for t in sel.finalists) and len(sel.finalists) == 3


def test_initial_prompt_is_the_incumbent_raced_and_kept_when_nothing_beats_it():
    result = optimize(reversal_task(), target="fake:planted", seed=3, searcher="ape", candidates=10, rounds=0,
                      initial_prompt=PLANTED + " Thanks.")
    sel = result.selection
    assert sel.incumbent == "init" and sel.incumbent_origin == "initial"
    # the user's prompt is already perfect: nothing beats it, so it ships
    assert sel.verdict == "no significant improvement" and result.best.candidate == "init"
    init = next(c for c in result.candidates if c.id == "init")
    assert init.dev.n == 12 and init.dev.acc == 1.0


def test_initial_prompt_that_is_beaten_is_reported_as_the_incumbent(tmp_path, capsys):
    prompt_file = tmp_path / "mine.txt"
    prompt_file.write_text("Repeat the word.\n")
    task_dir = tmp_path / "rev"
    task_dir.mkdir()
    for split in ("train", "dev", "test"):
        (task_dir / f"{split}.jsonl").write_text("".join(e.model_dump_json() + "\n"
                                                         for e in reversal_task().split(split)))
    (task_dir / "task.yaml").write_text("name: rev\nmetric: exact_match\nshots: 2\n"
                                        "data: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}\n")
    code = main(["--runs-dir", str(tmp_path / "runs"), "optimize", str(task_dir), "--target", "fake:planted",
                 "--initial-prompt", f"@{prompt_file}", "--searcher", "ape", "--rounds", "0", "--candidates", "10",
                 "--seed", "3", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["selection"]["incumbent_origin"] == "initial" and data["selection"]["verdict"] == "improved"
    rows = {b["name"]: b for b in data["baselines"]}
    assert rows["incumbent"]["text"] == "Repeat the word." and rows["incumbent"]["test"]["acc"] == 0.0
    assert data["best"]["text"] == PLANTED


def test_initial_prompt_file_that_is_missing_is_a_usage_error(tmp_path, capsys):
    code = main(["optimize", "topic", "--target", "fake:upper", "--initial-prompt", f"@{tmp_path}/nope.txt"])
    assert code == 2
    assert "initial prompt file" in capsys.readouterr().err


def test_confirmation_off_ships_the_best_on_dev_untested():
    result = optimize(reversal_task(), target="fake:planted", seed=3, searcher="ape", candidates=10, rounds=0,
                      confirm_limit=0)
    assert result.selection.verdict == "not tested" and result.best.text == PLANTED
    assert result.best.dev.n == 24 and result.selection.sizes["confirm"] == 0


def test_a_call_budget_keeps_back_what_confirming_and_testing_need():
    result = optimize(reversal_task(), target="fake:planted", seed=3, searcher="ape", candidates=16, rounds=2,
                      max_calls=260,
                      cache=False)
    assert result.status == "partial" and "kept to confirm and test the finalists" in result.stop_reason
    assert result.calls <= 260
    # the search stopped early, yet its finalists were confirmed and the shipped prompt was tested
    assert result.selection.verdict == "improved" and result.best.text == PLANTED
    assert result.best.test is not None and result.best.test.n == 16


def test_budget_that_ends_before_confirmation_ships_the_incumbent(monkeypatch):
    monkeypatch.setattr("optimizer.run.engine._reserve", lambda ctx, test_lp: 0)  # nothing kept back
    # baselines on 12 raced dev examples, 10 proposals raced: the budget runs out before the finalists are confirmed
    result = optimize(reversal_task(), target="fake:planted", seed=3, searcher="ape", candidates=10, rounds=0,
                      max_calls=90,
                      tiebreak_logprob=False)
    assert result.status == "partial"
    assert result.selection.verdict == "not tested" and result.best.candidate == result.selection.incumbent
    assert "budget" in result.selection.note


LONG = "Reverse the letters of the word, keeping every letter exactly as it is, only in the opposite order."


def verbose_model() -> FakeModel:
    """The long instruction is always right; the short one slips on words starting with s (a few examples)."""

    def answer(prompt: str) -> str:
        word = last_input(prompt)
        if "keeping every letter" in prompt or ("reverse the letters" in prompt.lower() and word[0] != "s"):
            return word[::-1]
        return word

    return FakeModel("fake:verbose", proposals=[LONG, PLANTED, "Repeat the word.", "Write a rhyme.", "Count letters."],
                     answer=answer)


def test_prefer_shorter_ships_the_shortest_prompt_not_significantly_worse():
    register_fake("verbose", verbose_model)
    plain = optimize(reversal_task(), target="fake:verbose", seed=3, searcher="ape", candidates=10, rounds=0)
    short = optimize(reversal_task(), target="fake:verbose", seed=3, searcher="ape", candidates=10, rounds=0,
                     prefer="shorter")
    by_text = {c.text: c for c in short.candidates}
    assert by_text[PLANTED].prompt_tokens < by_text[LONG].prompt_tokens
    # by accuracy the long prompt wins; the short one slips on a few examples, not significantly
    assert plain.best.text == LONG and plain.selection.prefer == "instruction"
    assert short.best.text == PLANTED and short.selection.prefer == "shorter"
    assert short.best.confirm.acc < plain.best.confirm.acc
    assert short.selection.verdict == "improved"  # it also beat the incumbent significantly
    assert "not significantly worse" in short.selection.note
    assert short.best.prompt_tokens == by_text[PLANTED].prompt_tokens
    assert short.best.tokens_per_example > short.best.prompt_tokens
    # the front: each prompt on it is more accurate than every shorter one
    front = [next(c for c in short.candidates if c.id == cid) for cid in short.pareto]
    assert [c.prompt_tokens for c in front] == sorted(c.prompt_tokens for c in front)
    assert all(a.dev.acc < b.dev.acc for a, b in zip(front, front[1:]))


def test_pareto_front_keeps_only_undominated_candidates():
    from optimizer.run.selection import pareto_front
    from optimizer.types import Candidate, Score

    def cand(cid: str, acc: float, tokens: int) -> Candidate:
        return Candidate(id=cid, text=cid, origin="x", dev=Score(acc=acc, n=10), prompt_tokens=tokens)

    cands = [cand("a", 0.5, 10), cand("b", 0.7, 20), cand("c", 0.6, 30), cand("d", 0.9, 40), cand("e", 0.9, 50)]
    assert [c.id for c in pareto_front(cands, lambda c: (c.dev.acc, 0.0))] == ["a", "b", "d"]


def test_too_few_confirmation_examples_are_said_up_front_with_the_gain_the_test_needs(capsys):
    from optimizer import load_task
    from optimizer.config import RunConfig
    from optimizer.run.preflight import check_job

    many = [Example(input=str(i), output=str(i), id=str(i)) for i in range(260)]
    task = Task(name="small", train=many[:20], dev=many[20:60], test=many[60:80], metric="exact_match")
    check_job(RunConfig.from_options("small", target="fake:echo"), task)  # 40 dev examples: 20 set aside to confirm
    err = capsys.readouterr().err
    assert "sets 20 dev examples aside" in err
    assert "gets 5 (finalists that answer alike) to 6 more of them right (up to +0.30 accuracy)" in err
    # the arithmetic is the test's own. Finalists that win on the same examples: 5 wins (and no loss) pass, 4 do not
    for won, passes in ((5, True), (4, False)):
        row = [1.0] * won + [0.0] * (20 - won)
        assert (max_t([row, row, row])[1][0] < 0.05) is passes
    # finalists that win on different examples: 6 wins each pass, 5 do not
    for won, passes in ((6, True), (5, False)):
        rows = [[1.0 if won * j <= i < won * (j + 1) else 0.0 for i in range(20)] for j in range(3)]
        assert (max_t(rows)[1][0] < 0.05) is passes
    check_job(RunConfig.from_options("small", target="fake:echo", finalists=1), task)
    assert "gets 5 more of them right (up to +0.25 accuracy)" in capsys.readouterr().err
    check_job(RunConfig.from_options("small", target="fake:echo", scoring="logprob"), task)
    assert "confirm" not in capsys.readouterr().err  # log-probabilities differ on every pair: no count to give
    big = Task(name="big", train=many[:20], dev=many[20:220], test=many[220:], metric="exact_match")
    check_job(RunConfig.from_options("big", target="fake:echo"), big)  # 100 to confirm: +0.06 is no news
    assert "confirm" not in capsys.readouterr().err
    check_job(RunConfig.from_options("capitalize_words", target="fake:echo"), load_task("capitalize_words"))
    assert "confirm" not in capsys.readouterr().err  # the bundled tasks set 60 aside: 6 more right is +0.10


def mirror_model(own_right=lambda word: not word.startswith("s"), name: str = "mirror") -> FakeModel:
    """Right only with two GOOD demonstrations; then under "Mirror the word." on every word, and under any other
    instruction on the words ``own_right`` accepts."""

    def answer(prompt: str) -> str:
        word = last_input(prompt)
        if len(GOOD & set(demo_inputs(prompt))) < 2:
            return word
        return word[::-1] if "Mirror the word." in prompt or own_right(word) else word

    return FakeModel(f"fake:{name}", answer=answer)


def mirror_task() -> Task:
    ex = [Example(input=w, output=w[::-1], id=f"w{i}") for i, w in enumerate(WORDS)]
    return Task(name="mirror", train=ex[:20], dev=ex[20:44], test=ex[44:], metric="exact_match",
                instructions=["Reverse the word."], shots=2)


class TwoSets:
    """Races one good demonstration set under a proposed instruction and under the incumbent's."""

    name = "two-sets"
    requires = frozenset({"generate"})

    def run(self, ctx) -> None:
        good = [ex.id for ex in ctx.task.train if ex.input in GOOD][:2]
        proposal = ctx.add("Mirror the word.", origin="joint", parent=None, round=0, demos=good)
        own = ctx.add(ctx.incumbent.text, origin="joint", parent=proposal.id, round=0, demos=good)
        ctx.race([ctx.incumbent, proposal, own], round=0)


def test_prefer_instruction_keeps_the_incumbents_wording_unless_another_is_significantly_better():
    register_fake("mirror", mirror_model)
    task = mirror_task()
    default = optimize(task, target="fake:mirror", seed=0, searcher=TwoSets())
    gain = optimize(task, target="fake:mirror", seed=0, searcher=TwoSets(), prefer="accuracy")
    for result in (default, gain):  # both finalists beat the incumbent; the proposal by a little more
        tests = {t.candidate: t for t in result.selection.finalists}
        by_text = {c.text: c.id for c in result.candidates if c.origin == "joint"}
        assert result.selection.verdict == "improved"
        assert tests[by_text["Mirror the word."]].significant and tests[by_text["Reverse the word."]].significant
        assert tests[by_text["Mirror the word."]].diff > tests[by_text["Reverse the word."]].diff
    assert gain.best.text == "Mirror the word." and gain.selection.prefer == "accuracy"
    assert default.best.text == "Reverse the word." and default.best.demos == gain.best.demos
    assert default.selection.prefer == "instruction" and "keeps the incumbent's instruction" in default.selection.note
    assert default.selection.shipped == default.best.candidate


def test_prefer_instruction_ships_another_instruction_that_is_significantly_better():
    register_fake("half", lambda: mirror_model(lambda word: word[0] < "n", name="half"))
    result = optimize(mirror_task(), target="fake:half", seed=0, searcher=TwoSets())
    tests = {t.candidate: t for t in result.selection.finalists}
    by_text = {c.text: c.id for c in result.candidates if c.origin == "joint"}
    assert tests[by_text["Reverse the word."]].significant  # better than the incumbent, but well short of the other
    assert result.best.text == "Mirror the word." and result.selection.prefer == "instruction"
    assert result.selection.note is None or "keeps the incumbent's instruction" not in result.selection.note


def _tiny_reversal(n_dev: int) -> Task:
    whole = reversal_task()
    return whole.model_copy(update={"dev": whole.dev[:n_dev]})


def test_a_task_with_two_dev_examples_confirms_on_one_and_says_it_cannot_win(capsys):
    result = optimize(_tiny_reversal(2), target="fake:planted", seed=3, searcher="ape", candidates=4, rounds=0)
    sel = result.selection
    assert sel.sizes["confirm"] == 1 and sel.finalists and all(t.p_value >= 0.5 for t in sel.finalists)
    assert sel.verdict == "no significant improvement" and sel.shipped == sel.incumbent
    assert "sets only 1 dev examples aside" in capsys.readouterr().err


def test_a_task_with_one_dev_example_ships_untested_and_says_why(capsys):
    result = optimize(_tiny_reversal(1), target="fake:planted", seed=3, searcher="ape", candidates=4, rounds=0)
    assert result.selection.verdict == "not tested" and result.selection.sizes["confirm"] == 0
    assert "leave none to set aside" in result.selection.note and "confirm_limit 0" not in result.selection.note
    assert "too few to set any aside" in capsys.readouterr().err
