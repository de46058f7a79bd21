"""The model registry, the one loaded-model cache and stop strings.

Every model string resolves to its provider's factory without importing any SDK; loading one
imports only that provider's SDK. Local models (tiny ones built from configs and saved to a
folder) are named by the model string as written, carry their path, and share one cache that
``unload_all`` empties for masked and causal models alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.errors import UsageError
from optimizer.models.providers.fake import FakeModel
from optimizer.models.registry import API_PROVIDERS, DEFAULT_MODEL, parse_model, providers
from optimizer.models.stops import cut_at_stop, first_stop
from optimizer.types import GenerateRequest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("openai", "anthropic", "torch", "transformers")

FORMS = {
    "embedded": "embedded",
    "embedded:gemma3-270m": "embedded",
    "embedded:splade-tiny": "embedded",
    "hf:/models/some-folder": "hf",
    "hf:bert-base-uncased": "hf",
    "openai:gpt-4o-mini": "openai",
    "openai-completions:smollm2": "openai-completions",
    "anthropic:claude-3-5-haiku-latest": "anthropic",
    "fake:echo": "fake",
}


def _python(code: str, **env: str) -> list[str]:
    """Run ``code`` in a fresh interpreter at the repository root; return its last line as JSON."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ registry


def test_every_model_form_resolves_without_importing_any_sdk() -> None:
    code = (
        "import json, sys\nimport optimizer\nfrom optimizer.models.registry import resolve\n"
        f"got = {{spec: (resolve(spec).name, resolve(spec).factory.__name__) for spec in {list(FORMS)!r}}}\n"
        f"print(json.dumps([got, [m for m in {HEAVY!r} if m in sys.modules]]))"
    )
    got, heavy = _python(code)
    assert heavy == []
    assert {spec: provider for spec, (provider, _) in got.items()} == FORMS
    assert len({factory for _, factory in got.values()}) == len(set(FORMS.values()))  # one factory per provider


@pytest.mark.parametrize(
    ("spec", "loaded"),
    [("openai:x", ["openai"]), ("openai-completions:x", ["openai"]), ("anthropic:x", ["anthropic"]),
     ("fake:echo", [])],
)
def test_loading_a_model_imports_only_its_sdk(spec: str, loaded: list[str]) -> None:
    code = (
        "import json, sys\nfrom optimizer.models.registry import load_model\n"
        f"adapter = load_model({spec!r}, base_url='http://127.0.0.1:9/v1', timeout=5)\n"
        f"print(json.dumps([adapter.name, [m for m in {HEAVY!r} if m in sys.modules]]))"
    )
    name, heavy = _python(code, OPENAI_API_KEY="sk-dummy", ANTHROPIC_API_KEY="sk-dummy")
    assert name == spec and heavy == loaded


def test_cli_help_and_models_list_do_not_import_torch() -> None:
    code = (
        "import json, runpy, sys\n"
        "for argv in (['--help'], ['models', 'list']):\n"
        "    sys.argv = ['apo', *argv]\n"
        "    try:\n        runpy.run_module('optimizer', run_name='__main__')\n"
        "    except SystemExit:\n        pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert _python(code) == []


def test_model_strings_are_checked_and_unknown_ones_list_the_forms() -> None:
    assert parse_model("embedded") == ("embedded", "") and parse_model(DEFAULT_MODEL)[0] == "embedded"
    assert parse_model("hf:/a/b:c") == ("hf", "/a/b:c")
    for bad in ("gpt-4o", "hf:", "openai:", "nope:x"):
        with pytest.raises(UsageError, match="model strings look like") as info:
            parse_model(bad)
        for form in ("embedded:NAME", "hf:PATH_OR_NAME", "openai-completions:MODEL", "anthropic:MODEL", "fake:NAME"):
            assert form in str(info.value)
    assert API_PROVIDERS == {"openai", "openai-completions", "anthropic"}
    assert {p.name for p in providers() if p.api} == API_PROVIDERS


# --------------------------------------------------------------------------- stop strings


def test_cut_at_stop_cuts_at_the_earliest_stop_string() -> None:
    assert cut_at_stop("a.b\nc", ["\n", "."]) == "a"
    assert cut_at_stop("abcd", ("cd", "bc")) == "a"  # earliest start wins, whatever the order
    assert cut_at_stop("abc", ["", "z"]) == "abc" and cut_at_stop("abc", ()) == "abc"
    assert first_stop("abc", ["c", "b"]) == 1 and first_stop("abc", ["", "z"]) is None


def test_the_fake_provider_cuts_at_stop_strings_too() -> None:
    fake = FakeModel("fake:stops", answer=lambda prompt: "yes.\nno")
    [out] = fake.generate([GenerateRequest(prompt="Input: x", stop=("\n", "."))])
    assert out.text == "yes"


# ------------------------------------------------------------------- local models and cache


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny BERT masked LM and a tiny GPT-2 causal LM, randomly initialised and saved to folders."""
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("tiny")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"the a movie was good bad".split()]
    (root / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = tf.BertTokenizer(str(root / "vocab.txt"))
    torch.manual_seed(0)
    small = {"vocab_size": len(words)}
    models = {
        "masked": tf.BertForMaskedLM(tf.BertConfig(**small, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                   intermediate_size=32, max_position_embeddings=32)),
        "causal": tf.GPT2LMHeadModel(tf.GPT2Config(**small, n_embd=16, n_layer=1, n_head=2, n_positions=32,
                                                   bos_token_id=3, eos_token_id=3)),
    }
    folders = {}
    for kind, model in models.items():
        folders[kind] = root / kind
        model.save_pretrained(folders[kind])
        tokenizer.save_pretrained(folders[kind])
    return folders


def test_hf_path_picks_the_masked_or_the_causal_adapter(tiny_folders: dict[str, Path]) -> None:
    from optimizer.models.providers.hf import HFAdapter
    from optimizer.models.providers.mlm import MaskedLMAdapter
    from optimizer.models.registry import load_model

    masked = load_model(f"hf:{tiny_folders['masked']}")
    causal = load_model(f"hf:{tiny_folders['causal']}")
    assert isinstance(masked, MaskedLMAdapter) and isinstance(causal, HFAdapter)
    assert masked.name == f"hf:{tiny_folders['masked']}" and causal.name == f"hf:{tiny_folders['causal']}"
    assert masked.path == str(tiny_folders["masked"].resolve()) and causal.path == str(tiny_folders["causal"])


def test_embedded_models_load_by_their_kind(tiny_folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The table's ``kind`` picks the loader; no embedded model is special-cased by name."""
    from optimizer.models import embedded
    from optimizer.models.providers.hf import HFAdapter
    from optimizer.models.providers.mlm import MaskedLMAdapter
    from optimizer.models.registry import load_model

    toy = embedded.EMBEDDED["splade-tiny"].model_copy(update={"name": "toy-causal", "kind": "causal"})
    monkeypatch.setitem(embedded.EMBEDDED, "toy-causal", toy)
    monkeypatch.setenv("APO_MODEL_PATH_SPLADE_TINY", str(tiny_folders["masked"]))
    monkeypatch.setenv("APO_MODEL_PATH_TOY_CAUSAL", str(tiny_folders["causal"]))
    masked = load_model("embedded:splade-tiny")
    causal = load_model("embedded:toy-causal")
    assert isinstance(masked, MaskedLMAdapter) and masked.name == "embedded:splade-tiny"
    assert masked.path == str(tiny_folders["masked"].resolve())
    assert isinstance(causal, HFAdapter) and causal.name == "embedded:toy-causal"
    assert causal.path == str(tiny_folders["causal"])
    rows = {row.name: row for row in embedded.list_embedded()}
    assert rows["splade-tiny"].kind == "masked" and rows["splade-tiny"].path == tiny_folders["masked"]
    assert rows["toy-causal"].present and rows["smollm2-135m-instruct"].default


def test_unload_all_forgets_masked_and_causal_models_alike(tiny_folders: dict[str, Path]) -> None:
    from optimizer.models.providers.hf_loading import unload_all
    from optimizer.models.providers.loaded import loaded_count
    from optimizer.models.registry import load_model

    specs = [f"hf:{tiny_folders['masked']}", f"hf:{tiny_folders['causal']}"]
    unload_all()
    first = [load_model(spec) for spec in specs]
    again = [load_model(spec) for spec in specs]
    assert loaded_count() == 2
    assert all(a.model is b.model and a.lock is b.lock for a, b in zip(first, again))  # loaded once, shared
    unload_all()
    assert loaded_count() == 0
    fresh = [load_model(spec) for spec in specs]
    assert all(a.model is not b.model for a, b in zip(first, fresh))
