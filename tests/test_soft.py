"""Prompt tuning, prefix tuning, P-tuning and LoRA as searchers (peft), on a tiny randomly initialised Llama
built from a config here (no download): the loss falls on a planted mapping and the trained adapter reaches
it on held-out examples; a SIGKILL mid-training resumes from the last checkpoint; the saved adapter reloads
(ours and peft's own loader) with the same scores; models without weights are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import REPO, wait_for

from optimizer import Example, Task, optimize, resume
from optimizer.errors import UsageError

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from test_hf_backend import _save_tiny  # noqa: E402

WORDS = ["fox", "dog", "cat", "house", "time", "model", "small", "big", "hot", "cold", "quick", "lazy", "brown",
         "France", "Paris", "Berlin"]
LR = {"prompt-tuning": 0.3, "prefix-tuning": 0.1, "p-tuning": 0.3, "lora": 0.01}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"hf:{_save_tiny(tmp_path_factory.mktemp('tiny'), chat=False)}"


def planted() -> Task:
    """Every input's answer is "chat": nothing the untrained model says, and nothing an instruction tells it."""
    rows = [Example(input=f"{a} {b}", output="chat", id=str(i))
            for i, (a, b) in enumerate((a, b) for a in WORDS for b in WORDS[:6])]
    return Task(name="planted", train=rows[:48], dev=rows[48:72], test=rows[72:96], metric="exact_match",
                instructions=["Say chat."], shots=0)


def _checkpoints(run_dir: str) -> list[dict]:
    lines = (Path(run_dir) / "events.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if '"type": "train_checkpoint"' in x]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["prompt-tuning", "prefix-tuning", "p-tuning", "lora"])
def test_each_method_learns_a_planted_mapping_and_ships_it(tiny, tmp_path, method):
    result = optimize(planted(), target=tiny, searcher=method, steps=160, eval_every=40, learning_rate=LR[method],
                      cache=False, runs_dir=tmp_path)
    marks = _checkpoints(result.run_dir)
    assert [m["step"] for m in marks] == [40, 80, 120, 160]
    assert marks[-1]["train_loss"] < marks[0]["train_loss"] / 2  # the loss falls
    assert marks[0]["trainable_params"] > 0 and marks[0]["train_examples"] == 48
    incumbent = next(b for b in result.baselines if b.name == "best_human")
    assert result.selection.incumbent_origin == "human" and incumbent.test.acc == 0.0  # the base model never says it
    assert result.selection.verdict == "improved" and result.best.text.startswith(f"<{method} adapter, step ")
    assert result.best.test.acc >= 0.6 and result.best.test.n == 24  # reached on held-out test examples
    step = int(result.best.text.rsplit(" ", 1)[-1].rstrip(">"))
    folder = Path(result.run_dir) / "adapter" / f"step-{step:05d}"
    assert {"adapter_model.safetensors", "adapter_config.json", "trainable.safetensors", "trainer.pt"} <= \
        {p.name for p in folder.iterdir()}
    assert result.best.adapter == f"adapter/step-{step:05d}" and incumbent.adapter is None  # the result says where


def test_the_saved_adapter_reloads_with_the_same_scores(tiny, tmp_path, capsys):
    import peft

    from optimizer.cli.main import main
    from optimizer.models.providers.hf_loading import load_hf
    from optimizer.search.soft.model import SoftModel
    from optimizer.settings import SoftConfig
    from optimizer.tasks.templates import ExecutionTemplate

    task = planted()
    result = optimize(task, target=tiny, searcher="prompt-tuning", steps=40, eval_every=20,
                      learning_rate=LR["prompt-tuning"], cache=False, runs_dir=tmp_path)
    folder = Path(result.run_dir) / "adapter" / "step-00040"
    capsys.readouterr()
    assert main(["--runs-dir", str(tmp_path), "runs", "show", result.run_id]) == 0  # says where the shipped one is
    shown = "".join(capsys.readouterr().out.split())
    assert f"adapter:{Path(result.run_dir) / result.best.adapter}(peft;worksonlyon" in shown
    box = load_hf(tiny[3:], device="cpu")
    fresh = SoftModel("prompt-tuning", SoftConfig(), box.model, box.tokenizer, ExecutionTemplate(), 1)
    fresh.load_adapter(folder)
    scored = {}
    for line in (Path(result.run_dir) / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "score" and event["split"] == "dev" and "output" in event:
            scored.setdefault(event["prompt_hash"], {})[event["example"]] = event["output"]
    from optimizer.run.scoring import prompt_hash

    recorded = scored[prompt_hash("<prompt-tuning adapter, step 40>")]
    by_id = {ex.id: ex for ex in task.dev}
    ids = sorted(recorded)
    assert fresh.answers([by_id[i] for i in ids]) == [recorded[i] for i in ids]
    # peft's own loader reads the same adapter from the run folder
    theirs = peft.PeftModel.from_pretrained(box.model, str(folder))
    ex = by_id[ids[0]]
    ctx = fresh.tokenizer(fresh.context(ex) + " chat", add_special_tokens=False)["input_ids"]
    ids_t = torch.tensor([fresh._bos + ctx])
    with torch.inference_mode():
        a = fresh.model(input_ids=ids_t).logits[0, -len(ids_t[0]):]
        b = theirs(input_ids=ids_t).logits[0, -len(ids_t[0]):]
    assert torch.allclose(a, b, atol=1e-4)


def _greedy_through_peft(model, example) -> str:
    """The reference: one full forward pass through the peft model for each generated token, one row at a time."""
    ids = model._bos + model.tokenizer(model.context(example), add_special_tokens=False)["input_ids"]
    made: list[int] = []
    for _ in range(model.template.max_tokens):
        with torch.inference_mode():
            token = int(model.model(input_ids=torch.tensor([ids + made])).logits[0, -1].argmax())
        made.append(token)
        if token in model.eos_ids or "\n" in model.tokenizer.decode(made, skip_special_tokens=True):
            break
    return model.tokenizer.decode(made, skip_special_tokens=True).split("\n", 1)[0].strip()


@pytest.mark.parametrize("method", ["prompt-tuning", "prefix-tuning", "p-tuning", "lora"])
def test_batched_answers_are_greedy_decoding_through_the_peft_model(tiny, method):
    """Rows of different lengths in one batch, the adapter's virtual tokens (or keys and values) in the cache:
    the same answers as decoding each row alone through peft's forward pass, without a cache."""
    from optimizer.models.providers.hf_loading import load_hf
    from optimizer.search.soft.model import SoftModel
    from optimizer.settings import SoftConfig
    from optimizer.tasks.templates import ExecutionTemplate

    box = load_hf(tiny[3:], device="cpu")
    model = SoftModel(method, SoftConfig(), box.model, box.tokenizer, ExecutionTemplate(max_tokens=12), 0)
    torch.manual_seed(1)
    with torch.no_grad():  # trained-looking weights (LoRA starts as the identity)
        for p in model.params:
            p.add_(torch.randn_like(p) * 0.5)
    inputs = ["fox", "dog jumps", "a cat sat on the mat", "house", "the quick brown fox jumps over", "hot cold"]
    examples = [Example(input=x, output="x", id=str(i)) for i, x in enumerate(inputs)]
    expected = [_greedy_through_peft(model, ex) for ex in examples]
    assert len({len(model.tokenizer(model.context(ex))["input_ids"]) for ex in examples}) > 3
    assert any(len(e) > 3 for e in expected)  # several tokens each, not one
    assert model.answers(examples) == expected
    assert model.answers(examples[2:3]) == expected[2:3]


def _row_nll(model, example) -> torch.Tensor:
    """The reference: one row alone through peft's forward pass with every position's logits, the gold answer's
    summed negative log-likelihood."""
    ctx, gold = model._pair(example, " " + example.output)
    logits = model.model(input_ids=torch.tensor([ctx + gold])).logits[0, -len(ctx + gold):]
    logp = torch.log_softmax(logits[len(ctx) - 1:-1].float(), -1)
    return -logp[torch.arange(len(gold)), torch.tensor(gold)].sum()


@pytest.mark.parametrize("method", ["prompt-tuning", "prefix-tuning", "p-tuning", "lora"])
def test_the_head_only_where_the_loss_reads_gives_each_rows_full_forward_values_and_gradients(tiny, method):
    """A batch of contexts and answers of different lengths, the LM head run only from the first position that
    predicts an answer token: each row's log-probability, and the gradient of their sum, equal those of the row
    alone with every position's logits."""
    from optimizer.models.providers.hf_loading import load_hf
    from optimizer.search.soft.model import SoftModel
    from optimizer.settings import SoftConfig
    from optimizer.tasks.templates import ExecutionTemplate

    box = load_hf(tiny[3:], device="cpu")
    model = SoftModel(method, SoftConfig(), box.model, box.tokenizer, ExecutionTemplate(max_tokens=12), 0)
    assert model._keep  # the tiny model's forward takes logits_to_keep: the path under test
    torch.manual_seed(2)
    with torch.no_grad():
        for p in model.params:
            p.add_(torch.randn_like(p) * 0.5)
    examples = [Example(input=x, output=y, id=str(i)) for i, (x, y) in enumerate(
        [("fox", "dog house"), ("the quick brown fox jumps over", "cat"), ("hot", "cold time model small"),
         ("a cat sat on the mat", "Paris")])]
    nll, _ = model._token_nll(*model._batch([model._pair(ex, " " + ex.output) for ex in examples]))
    nll.sum().backward()
    grads = [p.grad.clone() for p in model.params]
    model.optimizer.zero_grad(set_to_none=True)
    rows = torch.stack([_row_nll(model, ex) for ex in examples])
    rows.sum().backward()
    assert torch.allclose(nll, rows, atol=1e-4), (nll, rows)
    for ours, theirs in zip(grads, (p.grad for p in model.params)):
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-3)
    assert model.logprobs(examples) == pytest.approx([-float(x) for x in rows], abs=1e-4)


@pytest.mark.parametrize("method", ["prompt-tuning", "lora"])
def test_answers_a_logprob_pass_found_are_those_of_decoding(tiny, method, monkeypatch):
    """Where the log-probability pass shows greedy decoding would write the gold answer, answers() takes it from
    there; the answers are those of decoding row by row through peft either way, and a training step forgets
    them."""
    from optimizer.models.providers.hf_loading import load_hf
    from optimizer.search.soft.model import SoftModel
    from optimizer.settings import SoftConfig
    from optimizer.tasks.templates import ExecutionTemplate

    box = load_hf(tiny[3:], device="cpu")
    model = SoftModel(method, SoftConfig(learning_rate=LR[method]), box.model, box.tokenizer,
                      ExecutionTemplate(max_tokens=12), 0)
    task = planted()
    for step in range(40):  # until it says "chat"
        model.train_step(task.train[(step * 8) % 48:(step * 8) % 48 + 8])
    examples = [*task.test[:6], *(Example(input=ex.input, output="dog", id=f"x{ex.id}") for ex in task.test[6:9])]
    expected = [_greedy_through_peft(model, ex) for ex in examples]
    assert expected[:6].count("chat") >= 2, expected  # the planted answer, on some
    model.logprobs(examples)
    assert model.answers(examples) == expected
    taken = model.known_answers
    assert 1 <= taken <= sum(ex.output == e for ex, e in zip(examples, expected))
    assert model.answers(examples[::-1]) == expected[::-1] and model.known_answers == 2 * taken
    monkeypatch.setenv("APO_LOGPROB_REUSE", "0")  # turned off: every answer decoded, none found
    assert model.answers(examples) == expected and model.known_answers == 2 * taken
    model.logprobs(examples)
    monkeypatch.delenv("APO_LOGPROB_REUSE")
    model.train_step(task.train[:8])
    model.answers(examples)
    assert model.known_answers == 2 * taken  # new weights: every answer decoded


def test_a_killed_training_resumes_from_its_last_checkpoint(tiny, tmp_path):
    kw = {"searcher": "prompt-tuning", "steps": 120, "eval_every": 20, "learning_rate": LR["prompt-tuning"],
          "cache": False}
    code = (f"from optimizer import optimize; from test_soft import planted; "
            f"optimize(planted(), target={tiny!r}, runs_dir={str(tmp_path / 'runs')!r}, **{kw!r})")
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run = wait_for(lambda: next((p.parent for p in (tmp_path / "runs").glob("*/events.jsonl")
                                     if len(_checkpoints(str(p.parent))) >= 2), None), 120, "two checkpoints")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _checkpoints(str(run))
    assert 2 <= len(before) < 6 and not (run / "result.json").exists()
    resumed = resume(run.name, runs_dir=tmp_path / "runs", task=planted())
    marks = _checkpoints(resumed.run_dir)
    assert [m["step"] for m in marks] == [20, 40, 60, 80, 100, 120]  # nothing recorded twice, nothing lost
    assert marks[:len(before)] == before
    whole = optimize(planted(), target=tiny, runs_dir=tmp_path / "whole", **kw)
    # the same run as an uninterrupted one; floats to rounding (the killed process ran torch on one thread, this
    # one may use more, and sums in another order)
    assert resumed.status == whole.status and resumed.best.text == whole.best.text
    assert (resumed.best.test.acc, resumed.best.test.n) == (whole.best.test.acc, whole.best.test.n)
    assert resumed.best.test.lp == pytest.approx(whole.best.test.lp, abs=1e-3)
    assert [(c.text, c.dev.acc) for c in resumed.candidates] == [(c.text, c.dev.acc) for c in whole.candidates]
    assert resumed.selection.verdict == whole.selection.verdict and resumed.calls == whole.calls
    assert [m["step"] for m in _checkpoints(whole.run_dir)] == [m["step"] for m in marks]
    assert [m["train_loss"] for m in marks] == pytest.approx([m["train_loss"] for m in _checkpoints(whole.run_dir)],
                                                             rel=1e-3)


def test_models_without_weights_are_refused(tmp_path):
    for target, what in (("openai:gpt-4o-mini", "an API model"), ("fake:upper", "the fake model")):
        with pytest.raises(UsageError, match=f"--searcher lora needs gradients through a local model.*is {what}; use "
                                             "a local causal LM"):
            optimize(planted(), target=target, searcher="lora", max_calls=10, runs_dir=tmp_path)
    with pytest.raises(UsageError, match="rounds: APE option"):
        optimize(planted(), target="fake:upper", searcher="lora", rounds=2, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.integration
@pytest.mark.slow
def test_a_few_steps_on_the_embedded_model(tmp_path):
    result = optimize("capitalize_words", target="embedded", searcher="prompt-tuning", steps=6, eval_every=3,
                      train_batch_size=4, init_text="Capitalize every word.", dev_limit=8, test_limit=8,
                      cache=False, runs_dir=tmp_path)
    marks = _checkpoints(result.run_dir)
    assert [m["step"] for m in marks] == [3, 6] and all(m["train_loss"] > 0 for m in marks)
    assert marks[0]["trainable_params"] == 8 * 576  # 8 virtual tokens of SmolLM2's 576-wide embeddings
    assert result.status == "complete" and result.best.test.n == 8
    adapters = {c.text for c in result.candidates if c.origin == "prompt-tuning"}
    assert adapters == {"<prompt-tuning adapter, step 3>", "<prompt-tuning adapter, step 6>"}
    assert (Path(result.run_dir) / "adapter" / "step-00006" / "adapter_model.safetensors").exists()


def test_the_leaderboard_shows_trained_and_written_prompts_together(tiny, tmp_path):
    from optimizer import build_leaderboard
    from optimizer.api import leaderboard_text
    from optimizer.report.text import TRAINING_COLUMNS, columns

    trained = optimize(planted(), target=tiny, searcher="prompt-tuning", steps=80, eval_every=40,
                       learning_rate=LR["prompt-tuning"], cache=False, runs_dir=tmp_path)
    written = optimize("capitalize_words", target="fake:upper", searcher="ape", rounds=1, cache=False,
                       runs_dir=tmp_path)
    assert trained.selection.verdict == "improved"
    board = build_leaderboard(tmp_path)
    assert set(TRAINING_COLUMNS) <= set(columns(board))
    rows = {row.searcher: row.best for row in board.rows}
    assert rows["prompt-tuning"].trainable_params == 8 * 32 and rows["prompt-tuning"].train_examples == 48
    assert rows["prompt-tuning"].train_s is not None and rows["prompt-tuning"].demos_k == 0
    assert rows["prompt-tuning"].tokens_per_example is not None
    assert rows["ape"].trainable_params == 0 and rows["ape"].train_examples == 40  # what its search could draw on
    md = leaderboard_text(board, "md")
    assert "| trained params | train examples | train time | tokens/example |" in md and "| 256 | 48 |" in md
    html = leaderboard_text(board, "html")
    assert ">trained params</th>" in html and "&lt;prompt-tuning adapter, step" in html
    assert written.run_id.replace("_", "\\_") in md
    from optimizer import export_run

    with pytest.raises(UsageError, match=r"shipped a trained prompt \(prompt-tuning, step \d+\): an adapter of the "
                                         r"model hf:.*works only on that model.*adapter/step-000\d0/"):
        export_run(trained.run_id, runs_dir=tmp_path)
    from optimizer import evaluate_run

    again = evaluate_run(trained.run_id, task=planted(), runs_dir=tmp_path)  # apo eval --from-run: the adapter
    assert again.matches and again.acc == trained.best.test.acc and again.n == 24 and not again.differing


def test_the_call_budget_stops_training_with_a_partial_result(tiny, tmp_path):
    result = optimize(planted(), target=tiny, searcher="lora", steps=1000, eval_every=10, learning_rate=LR["lora"],
                      max_calls=1200, cache=False, runs_dir=tmp_path)
    marks = _checkpoints(result.run_dir)
    assert result.status == "partial" and "budget" in str(result.stop_reason)
    assert 0 < len(marks) and marks[-1]["step"] < 1000  # training stopped early, its checkpoints kept
    assert result.calls <= 1200 and result.best.test.n == 24  # what confirming and testing need was kept back
    # training and adapter scoring book their input tokens, not only their passes: a training step reads each
    # row's context (at least 5 tokens) and gold answer twice, forward and backward, 8 rows a step
    assert result.usage["target"]["prompt_tokens"] >= marks[-1]["step"] * 2 * 8 * 5


def test_adapter_scoring_batches_rows_of_like_length_and_keeps_the_given_order():
    """The scorer runs an adapter's rows sorted by input length, in chunks, and puts each score back in its row;
    rows of other prompts go to the instruction scorer."""
    import contextlib
    import random

    from optimizer.run.scoring import LP, ScoreRecord
    from optimizer.search.soft.search import CHUNK, SoftScorer

    class Adapter:  # stands in for the peft model: scores are the input's length, batches recorded
        loaded, batches = None, []

        def load_adapter(self, folder):
            self.loaded = folder

        def input_tokens(self, examples, *, answers):
            return sum(len(ex.input) for ex in examples)

        def logprobs(self, examples):
            self.batches.append([len(ex.input) for ex in examples])
            return [-float(len(ex.input)) for ex in examples]

    class Base:  # the instruction scorer
        template = None

        def compute(self, pairs, kinds):
            return [ScoreRecord(lp=1.0) for _ in pairs]

    class Target:
        def passes(self, rows, tokens):
            return contextlib.nullcontext()

    lengths = random.Random(0).sample(range(1, 60), 40)
    examples = [Example(input="x" * n, output="y", id=str(i)) for i, n in enumerate(lengths)]
    adapter = Adapter()
    scorer = SoftScorer(Base(), adapter, Target(), lambda p, a: 0.0)
    scorer.register("<adapter>", Path("ckpt"))
    pairs = [("<adapter>" if i % 4 else "Say y.", ex) for i, ex in enumerate(examples)]
    records = scorer.compute(pairs, frozenset({LP}))
    assert [r.lp for r in records] == [-float(len(ex.input)) if key == "<adapter>" else 1.0 for key, ex in pairs]
    ran = [n for batch in adapter.batches for n in batch]
    assert ran == sorted(len(ex.input) for key, ex in pairs if key == "<adapter>")
    assert len(adapter.batches) == 2 and len(adapter.batches[0]) == CHUNK


def test_answers_found_by_a_logprob_pass_go_last_so_the_others_decode_in_full_chunks():
    import contextlib
    import random

    from optimizer.run.scoring import ACC
    from optimizer.search.soft.search import CHUNK, SoftScorer

    class Adapter:  # answers are the input; inputs of even length were found by a log-probability pass
        loaded, batches = Path("ckpt"), []

        def known(self, ex):
            return len(ex.input) % 2 == 0

        def input_tokens(self, examples, *, answers):
            return 0

        def answers(self, examples):
            self.batches.append([self.known(ex) for ex in examples])
            return [ex.input for ex in examples]

    class Target:
        def passes(self, rows, tokens):
            return contextlib.nullcontext()

    lengths = random.Random(1).sample(range(1, 80), 48)
    examples = [Example(input="x" * n, output="x" * n, id=str(i)) for i, n in enumerate(lengths)]
    adapter = Adapter()
    scorer = SoftScorer(None, adapter, Target(), lambda p, a: float(p in a))
    scorer.register("<adapter>", Path("ckpt"))
    records = scorer.compute([("<adapter>", ex) for ex in examples], frozenset({ACC}))
    assert [r.output for r in records] == [ex.input for ex in examples] and all(r.acc == 1.0 for r in records)
    unknown = sum(not adapter.known(ex) for ex in examples)
    flags = [k for batch in adapter.batches for k in batch]
    assert flags == [False] * unknown + [True] * (len(examples) - unknown)  # every decoding chunk full but the last
    assert all(len(b) == CHUNK for b in adapter.batches[:-1])


@pytest.mark.slow
def test_an_adapter_learns_and_answers_a_multi_line_mapping(tiny, tmp_path):
    task = planted()
    two = {s: [e.model_copy(update={"output": "chat\nchat"}) for e in getattr(task, s)]
           for s in ("train", "dev", "test")}
    result = optimize(task.model_copy(update=two), target=tiny, searcher="lora", steps=160, eval_every=40,
                      learning_rate=LR["lora"], cache=False, runs_dir=tmp_path)
    assert result.multiline_answers and result.selection.verdict == "improved"
    assert result.best.test.acc >= 0.6  # both lines, stopped at the blank line the training answers end with
