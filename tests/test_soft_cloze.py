"""The trained searchers on a masked LM (PET-style): a tiny randomly initialised BERT built from a config here,
a cloze task whose every answer is the class the untrained model never predicts; each method learns it and
ships it against the manual template, which AutoPrompt's cloze scorer scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer import Example, Task, optimize

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from test_autoprompt import bert_tokenizer  # noqa: E402

WORDS = ["good", "bad", "movie", "film", "very", "really", "great", "awful", "it", "was"]
LR = {"prompt-tuning": 0.3, "prefix-tuning": 0.1, "p-tuning": 0.3, "lora": 0.01}
LABEL_WORDS = {"negative": ["bad"], "positive": ["good"]}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    import transformers as tf

    torch.manual_seed(0)
    tok = bert_tokenizer()
    config = tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64, initializer_range=0.3)
    folder = tmp_path_factory.mktemp("bert")
    tf.BertForMaskedLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return f"hf:{folder}"


def planted(label: str, *, labelled: bool = False) -> Task:
    rows = [Example(input=f"{a} {b} {c}", output=label, id=str(i)) for i, (a, b, c) in
            enumerate((a, b, c) for a in WORDS for b in WORDS for c in WORDS[:3])]
    return Task(name="planted_cloze", train=rows[:40], dev=rows[40:160], test=rows[160:220], metric="exact_match",
                instructions=["{sentence} it was [P] ."], labels=[label] if labelled else None)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["prompt-tuning", "prefix-tuning", "p-tuning", "lora"])
def test_each_method_learns_a_planted_class_on_a_masked_lm(tiny_bert, tmp_path, method):
    task = planted("negative")  # the untrained model answers "positive" for every input
    result = optimize(task, target=tiny_bert, searcher=method, steps=60, eval_every=20, learning_rate=LR[method],
                      label_words=LABEL_WORDS, cache=False, runs_dir=tmp_path)
    human = next(b for b in result.baselines if b.name == "best_human")
    assert human.text == "{sentence} it was [P] ." and human.test.acc <= 0.5
    marks = [json.loads(x) for x in (Path(result.run_dir) / "events.jsonl").read_text().splitlines()
             if '"type": "train_checkpoint"' in x]
    assert [m["step"] for m in marks] == [20, 40, 60] and marks[-1]["train_loss"] < marks[0]["train_loss"]
    assert result.selection.verdict == "improved" and result.best.text.startswith(f"<{method} adapter")
    assert result.best.test.acc == 1.0 and result.best.test.n == 60


def test_a_masked_lm_needs_a_manual_template(tiny_bert, tmp_path):
    from optimizer.errors import UsageError

    task = planted("negative").model_copy(update={"instructions": ["Say the class."]})
    with pytest.raises(UsageError, match=r"needs a manual cloze template with a \[P\] slot"):
        optimize(task, target=tiny_bert, searcher="lora", steps=5, label_words=LABEL_WORDS, runs_dir=tmp_path)


def test_the_baseline_searcher_ships_the_manual_template_on_a_masked_lm(tiny_bert, tmp_path):
    # the reference row of a comparison on a masked LM: no search, the manual template scored through the label
    # words by AutoPrompt's cloze scorer, exactly as the trained searchers' baselines are
    task = planted("positive")  # what the untrained model mostly answers
    result = optimize(task, target=tiny_bert, searcher="baseline", label_words=LABEL_WORDS, cache=False,
                      runs_dir=tmp_path)
    assert result.status == "complete" and [c.origin for c in result.candidates] == ["human"]  # the incumbent
    assert result.best.text == "{sentence} it was [P] ." and result.selection.incumbent_origin == "human"
    assert result.best.test.acc > 0.5 and result.best.test.n == 60
    from optimizer import export_run
    from optimizer.errors import UsageError

    with pytest.raises(UsageError, match="its prompt is a cloze template"):  # not an instruction to export
        export_run(result.run_id, runs_dir=tmp_path)
    trained = optimize(task, target=tiny_bert, searcher="lora", steps=2, eval_every=2, label_words=LABEL_WORDS,
                       cache=False, runs_dir=tmp_path)
    human = next(b for b in trained.baselines if b.name == "best_human")
    assert human.test_acc == result.best.test_acc  # the same template, the same per-example scores


@pytest.mark.slow
def test_a_causal_lm_reads_a_cloze_classification_through_its_manual_template(tmp_path):
    # sst2 on SmolLM2: a classification whose human instruction is a cloze template is read by a causal LM as the
    # next token after the text before [P], through the label words; baseline and trained searchers both
    from test_hf_backend import _save_tiny

    target = f"hf:{_save_tiny(tmp_path / 'llama', chat=False)}"
    words = {"negative": ["cat"], "positive": ["dog"]}
    baseline = optimize(planted("negative", labelled=True), target=target, searcher="baseline", label_words=words,
                        cache=False, runs_dir=tmp_path)
    untrained = baseline.best.test.acc
    assert baseline.best.text == "{sentence} it was [P] ." and baseline.best.test.n == 60
    outputs = {json.loads(x).get("output") for x in (Path(baseline.run_dir) / "events.jsonl").read_text().splitlines()
               if '"split": "test"' in x}
    assert outputs <= {"negative", "positive"}  # classes read at the slot, not generated text
    # the class the untrained model mostly misses
    task = planted("negative" if untrained < 0.5 else "positive", labelled=True)
    result = optimize(task, target=target, searcher="prompt-tuning", steps=40, eval_every=20, learning_rate=0.3,
                      label_words=words, cache=False, runs_dir=tmp_path)
    human = next(b for b in result.baselines if b.name == "best_human")
    assert human.text == "{sentence} it was [P] ." and human.test.acc <= 0.5
    assert result.selection.verdict == "improved" and result.best.test.acc == 1.0


def test_cloze_scores_come_back_from_the_response_cache(tiny_bert, tmp_path, monkeypatch):
    # the manual template and the no-template baseline are the same in every run of a comparison: the second run
    # reads their scores back instead of running the model again, with the same per-example scores
    monkeypatch.setenv("APO_CACHE_DIR", str(tmp_path / "cache"))
    task = planted("positive")
    first, second = (optimize(task, target=tiny_bert, searcher="baseline", label_words=LABEL_WORDS,
                              runs_dir=tmp_path / name) for name in ("a", "b"))
    assert first.usage["target"]["cache_hits"] == 0 and first.usage["target"]["calls"] > 0
    hits = second.usage["target"]["cache_hits"]
    assert second.usage["target"]["calls"] == 0 and hits == first.usage["target"]["calls"]
    assert second.best.test_acc == first.best.test_acc
    other = optimize(task, target=tiny_bert, searcher="baseline", label_words={"negative": ["awful"], "positive":
                     ["great"]}, runs_dir=tmp_path / "c")  # other label words: other keys, run again
    assert other.usage["target"]["cache_hits"] == 0 and other.usage["target"]["calls"] == first.usage["target"]["calls"]


def test_one_pass_gives_a_cloze_adapters_log_probabilities_and_answers(tiny_bert):
    """Scoring asks for the gold log-probabilities and the answers in two calls; the cloze adapter computes both
    in one pass, and computes again once its weights change (a training step, a checkpoint loaded)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
    from optimizer.search.soft.cloze import ClozeSoftModel
    from optimizer.settings import SoftConfig
    from optimizer.tasks.cloze import parse_template

    folder = tiny_bert.removeprefix("hf:")
    cloze = ClozeModel(AutoModelForMaskedLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                       kind="masked")
    soft = ClozeSoftModel("prompt-tuning", SoftConfig(learning_rate=0.3), cloze,
                          parse_template("{sentence} it was [P] ."), Verbalizer(cloze, LABEL_WORDS), 0)
    passes = []
    real = soft._class_logprobs
    soft._class_logprobs = lambda examples: passes.append(len(examples)) or real(examples)
    task = planted("negative")
    examples = task.dev[:6]
    lp, answers = soft.logprobs(examples), soft.answers(examples)
    assert passes == [6] and len(lp) == 6 and set(answers) <= {"negative", "positive"}
    soft.logprobs(examples[:2] + task.dev[6:8])
    assert passes == [6, 2]  # only the two not scored yet
    soft.train_step(task.train[:8])
    after = soft.logprobs(examples)
    assert passes[-1] == 6 and after != lp  # new weights, new scores
    with torch.inference_mode():
        fresh, _ = real(examples)
    assert after == pytest.approx(fresh.tolist(), abs=1e-6)


@pytest.mark.parametrize("lm", ["bert", "llama"])
@pytest.mark.parametrize("method", ["prompt-tuning", "prefix-tuning", "p-tuning", "lora"])
def test_the_lm_head_reads_only_the_prediction_slot(tiny_bert, tmp_path, lm, method):
    """The adapter's class log-probabilities, computed with the LM head on each row's prediction slot alone, equal
    those read from the logits of every position (the virtual tokens first); rows of different lengths."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
    from optimizer.search.soft.cloze import ClozeSoftModel
    from optimizer.settings import SoftConfig
    from optimizer.tasks.cloze import parse_template

    if lm == "bert":
        folder, words = tiny_bert.removeprefix("hf:"), LABEL_WORDS
        cloze = ClozeModel(AutoModelForMaskedLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                           kind="masked")
    else:
        from test_hf_backend import _save_tiny

        folder, words = str(_save_tiny(tmp_path / "llama", chat=False)), {"negative": ["cat"], "positive": ["dog"]}
        cloze = ClozeModel(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                           kind="causal")
    verbalizer = Verbalizer(cloze, words)
    soft = ClozeSoftModel(method, SoftConfig(), cloze, parse_template("{sentence} it was [P] ."), verbalizer, 0)
    soft.train_step(planted("negative").train[:8])  # adapter weights away from their initial values
    rows_in = [("good", "positive"), ("bad movie it was very bad", "negative"), ("great film", "positive")]
    examples = [Example(input=text, output=label, id=str(i)) for i, (text, label) in enumerate(rows_in)]
    seen = []
    hook = soft.model.get_output_embeddings().register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
    with torch.inference_mode():
        lp, pred = soft._class_logprobs(examples)
    hook.remove()
    assert seen == [1]  # the head ran on one position a row
    ids, mask, predict = cloze._batch(soft._encode(examples))
    with torch.inference_mode():
        full = soft.model(input_ids=ids, attention_mask=mask).logits[:, -ids.shape[1]:]
    rows = torch.arange(len(examples))
    ref_lp, ref_pred = verbalizer.score(torch.log_softmax(full[rows, predict].float(), dim=-1),
                                        [verbalizer.gold(ex.output) for ex in examples])
    assert lp.tolist() == pytest.approx(ref_lp.tolist(), abs=1e-5) and pred == ref_pred
    # a model whose logits do not come through its output embeddings module: read from every position's logits
    soft.model.get_output_embeddings = lambda: torch.nn.Identity()
    with torch.inference_mode():
        lp_all, pred_all = soft._class_logprobs(examples)
    assert lp_all.tolist() == pytest.approx(ref_lp.tolist(), abs=1e-5) and pred_all == ref_pred
