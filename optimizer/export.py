"""A run's shipped prompt exactly as the target saw it, for use outside apo: the execution template rendered
with the instruction and demonstrations, the last input left as ``{input}``, written as text, JSON, chat messages
or a Python module, with a manifest (model, seed, task fingerprint, scores, verdict, p-values, apo's commit).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from optimizer.config import RunConfig
from optimizer.errors import UsageError
from optimizer.export_module import DEMOS_PLACEHOLDER, PLACEHOLDER, python_module
from optimizer.report.stats import bootstrap_ci
from optimizer.run.provenance import task_fingerprint
from optimizer.search.soft.labels import adapter_step, checkpoint_folder
from optimizer.search.soft.search import not_text
from optimizer.tasks.nearest import VECTORIZER, NearestExamples, nearest_k, nearest_phrase
from optimizer.tasks.templates import ExecutionTemplate, demo_block
from optimizer.types import Example

__all__ = ["FORMATS", "PLACEHOLDER", "ExportedPrompt", "Manifest", "RunEvalResult", "evaluate_run", "export_prompt",
           "export_run", "shipped", "shipped_prompt", "task_fingerprint"]

FORMATS = ("text", "json", "chat", "python")
CLOZE_SEARCHERS = frozenset({"autoprompt"})
"""Searchers whose prompts are cloze templates read off a white-box model, not instructions a model executes."""
_SENTINEL = "\x00apo-input\x00"


class Manifest(BaseModel):
    """Where an exported prompt came from and how well it scored."""

    run_id: str = Field(description="The run.")
    task: str = Field(description="Task name.")
    task_sha256: str | None = Field(description="Fingerprint of the task's examples (None: the run recorded none).")
    target: str = Field(description="The target model, as given to the run.")
    target_path: str | None = Field(description="The target's weights on disk, for local models.")
    seed: int = Field(description="The run seed.")
    searcher: str = Field(description="The search strategy.")
    execution_style: Literal["completion", "chat"] = Field(
        description="``completion``: raw text the model continues; ``chat``: one user message.")
    decoding: str = Field(description="How the target answered and how the answer was read from its reply.")
    demonstrations: str = Field(description="How many demonstrations the prompt shows, and whose they are.")
    status: str = Field(description="``complete``, or ``partial`` when a budget stopped the run.")
    dev: dict[str, Any] | None = Field(description="Its score on the dev examples raced on (acc, lp, n).")
    confirm: dict[str, Any] | None = Field(description="Its score on the held-out confirmation examples.")
    test: dict[str, Any] | None = Field(description="Its score on the test examples.")
    test_ci95: list[float] | None = Field(description="Bootstrap 95% interval of the test accuracy.")
    verdict: str | None = Field(description="The selection verdict (None for runs made before selection).")
    selection_test: str | None = Field(description="The statistical test behind the verdict.")
    alpha: float | None = Field(description="Its significance level.")
    p_value: float | None = Field(description="One-sided p-value of the shipped finalist against the incumbent "
                                              "(None when the incumbent shipped).")
    p_adjusted: float | None = Field(description="The same, adjusted for the number of finalists.")
    finalists: list[dict[str, Any]] = Field(description="Every finalist's difference and p-values against the "
                                                         "incumbent.")
    sizes: dict[str, int] = Field(description="Examples in each part: dev (racing), confirm, test.")
    apo_version: str | None = Field(description="apo's version when the run started.")
    git_commit: str | None = Field(description="apo's git commit when the run started.")
    placeholder: str = Field(default=PLACEHOLDER, description="Stands for the input in the exported prompt.")


class ExportedPrompt(BaseModel):
    """A run's shipped prompt rendered as the target saw it, with the input left as :data:`PLACEHOLDER`."""

    instruction: str = Field(description="The instruction (empty for none).")
    demonstrations: list[dict[str, str]] = Field(description="The demonstrations in the order shown: input, output, "
                                                             "training example id (with ``nearest``: the pool).")
    nearest: int | None = Field(default=None, description="When set, the prompt shows each input this many of the "
                                "``demonstrations`` (the pool) nearest to it, the nearest last, where the template "
                                "has ``{demonstrations}``.")
    style: Literal["completion", "chat"] = Field(description="How the prompt was sent: raw text, or one user message.")
    template: str = Field(description="The whole prompt, with ``{input}`` standing for the last input.")
    manifest: Manifest = Field(description="Where it came from and how well it scored.")
    notes: list[str] = Field(default_factory=list, description="What to know before using it (a partial run, …).")
    _retriever: NearestExamples | None = PrivateAttr(default=None)

    def render(self, input: str) -> str:
        """The prompt for ``input``, exactly as the target would be sent it."""
        head, _, tail = self.template.rpartition(PLACEHOLDER)
        if self.nearest is not None:
            before, _, after = head.rpartition(DEMOS_PLACEHOLDER)
            if self._retriever is None:
                self._retriever = NearestExamples([Example.model_validate(d) for d in self.demonstrations])
            head = before + demo_block(self._retriever.select(Example(input=input, output=""), self.nearest)) + after
        return f"{head}{input}{tail}"

    def messages(self, input: str = PLACEHOLDER) -> list[dict[str, str]]:
        """The prompt as OpenAI-style chat messages (one user message, as apo's chat style sends it)."""
        return [{"role": "user", "content": self.render(input)}]

    def notes_for(self, format: str) -> list[str]:
        """:attr:`notes`, plus what the format itself changes."""
        if format == "chat" and self.style == "completion":
            return [*self.notes, "the run sent this prompt as raw text for the model to continue (completion style); "
                    "sent as a chat message it passes through the model's chat template, so the run's scores need "
                    "not carry over (a run with --execution-style chat measures that)"]
        return list(self.notes)

    def format_as(self, format: str) -> str:
        """The prompt written as ``text`` (the prompt alone), ``json``, ``chat`` or ``python``."""
        if format == "text":
            return self.template
        if format == "json":
            return json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n"
        if format == "chat":
            return json.dumps(self.messages(), indent=2, ensure_ascii=False) + "\n"
        if format == "python":
            return python_module(self)
        raise UsageError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")

    def as_json(self) -> dict[str, Any]:
        """The JSON export: instruction, demonstrations, template, chat messages (chat style) and manifest."""
        return {"instruction": self.instruction, "demonstrations": self.demonstrations, "nearest": self.nearest,
                "retriever": None if self.nearest is None else {"similarity": "cosine", "tfidf": VECTORIZER},
                "style": self.style, "placeholder": PLACEHOLDER, "template": self.template,
                "messages": self.messages() if self.style == "chat" else None,
                "manifest": self.manifest.model_dump(), "notes": self.notes}

    def manifest_lines(self) -> list[str]:
        """The manifest as ``# name: value`` lines (``apo export --format text`` prints them on stderr)."""
        return [f"# {name}: {_plain(value)}" for name, value in self.manifest.model_dump().items()]


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def shipped(result: dict | None, config: dict, run_id: str, adapters: bool = False) -> dict:
    """The ``best`` entry of a run's ``result.json`` (None while it has none), or a :class:`UsageError` saying why
    the run has no exportable prompt (a trained adapter is one unless ``adapters``); ``config`` is its
    ``config.json`` and ``run_id`` names it in messages."""
    searcher = (result or {}).get("searcher") or config.get("config", {}).get("searcher", "ape")
    if searcher in CLOZE_SEARCHERS or "[P]" in str(((result or {}).get("best") or {}).get("text")):  # a masked LM's
        raise UsageError(f"run {run_id} was made by the {searcher} searcher: its prompt is a cloze template whose "
                         "[P] slot is read off a white-box model's vocabulary, not an instruction a model answers, so "
                         "it cannot be exported or re-scored as one; the template is best.text in its result.json")
    if result is None:
        raise UsageError(f"run {run_id} has no result.json yet (interrupted or still running), so nothing shipped; "
                         f"finish it with `apo resume {run_id}`, then export it")
    if not result.get("best"):
        reason = f" ({result['stop_reason']})" if result.get("stop_reason") else ""
        raise UsageError(f"run {run_id} shipped no prompt: the budget ran out before any prompt was scored on dev"
                         f"{reason}; run the job again with a larger budget (`apo optimize TASK --dry-run` says "
                         "what it needs)")
    best = dict(result["best"])
    if adapter_step(searcher, best.get("text")) is not None and not adapters:
        raise UsageError(not_text(run_id, searcher, best["text"], result.get("target") or "?"))
    return best


def shipped_prompt(result: dict | None, config: dict, *, run_id: str | None = None,
                   demonstrations: Sequence[Example] | None = None,
                   pool: Sequence[Example] | None = None) -> ExportedPrompt:
    """A run's shipped prompt, rendered by the run's execution template with the input left as ``{input}``.

    Args:
        result: the run's ``result.json`` as stored.
        config: the run's ``config.json`` as stored (``config``, ``run_id``, ``provenance``).
        run_id: the run, for messages (default: the one in ``config``).
        demonstrations: the demonstrations, for a result made before results recorded them (they are
            rebuilt from the task by the caller); otherwise they are read from the result.
        pool: the task's training examples, for a prompt that shows each input its nearest ones.

    Returns:
        The exported prompt; a run without a shipped prompt, or whose prompt is a cloze template,
        raises :class:`UsageError`.
    """
    run_id = run_id or str(config.get("run_id") or (result or {}).get("run_id") or "?")
    best = shipped(result, config, run_id)
    assert result is not None  # shipped() refused a run without one
    run = RunConfig.model_validate(config["config"])
    notes = _notes(result, best)
    k = nearest_k(best.get("demos"))
    if k is not None:
        if pool is None:
            raise UsageError(f"run {run_id}'s prompt shows each input its nearest training examples; export it "
                             "through optimizer.api.export_run, which loads the task's training examples")
        demos = list(pool)
        notes.append(f"the prompt shows {nearest_phrase(k)}: {DEMOS_PLACEHOLDER} stands for them, chosen from the "
                     f"{len(demos)} demonstrations listed by TF-IDF cosine of character 2- to 4-grams; the JSON "
                     "export names the settings, and the Python module's render(input) chooses them (it needs "
                     "scikit-learn)")
    elif "demo_examples" in best:
        demos = [Example.model_validate(d) for d in best["demo_examples"]]
    elif demonstrations is not None:
        demos = list(demonstrations)
        notes.append("this run's result does not list its demonstrations: they were drawn again from the task with "
                     "the run's seed; `apo eval --from-run` checks that they reproduce its test score")
    else:
        raise UsageError(f"run {run_id}'s result does not list the demonstrations its prompt was shown; export it "
                         "through optimizer.api.export_run, which draws them again from the task")
    template = ExecutionTemplate(demos=() if k is not None else tuple(demos), style=run.execution_style,
                                 multiline=bool(result.get("multiline_answers")))
    instruction = str(best.get("text") or "")
    text = template.context(instruction, Example(input=_SENTINEL, output=""))
    head, _, tail = text.rpartition(_SENTINEL)
    if k is not None:
        cut = head.rindex("Input: ")
        head = head[:cut] + DEMOS_PLACEHOLDER + head[cut:]
    if PLACEHOLDER in head + tail:
        notes.append(f"the prompt itself contains the text {PLACEHOLDER}: only the last one stands for the input")
    return ExportedPrompt(
        instruction=instruction, style=run.execution_style, template=f"{head}{PLACEHOLDER}{tail}", nearest=k,
        demonstrations=[{"input": d.input, "output": d.output, "id": d.id} for d in demos],
        manifest=_manifest(result, config, run, best, run_id, len(demos), template.decoding), notes=notes)


def _manifest(result: dict, config: dict, run: RunConfig, best: dict, run_id: str, k: int, decoding: str) -> Manifest:
    prov = config.get("provenance") or {}
    sel = result.get("selection") or {}
    finalists = sel.get("finalists") or []
    shipped_test: dict[str, Any] = next((f for f in finalists if f.get("candidate") == best.get("candidate")), {})
    test_acc = [float(x) for x in best.get("test_acc") or []]
    ci = [round(x, 4) for x in bootstrap_ci(test_acc)] if test_acc else None
    return Manifest(
        run_id=run_id, task=result.get("task") or (prov.get("task") or {}).get("name") or run.task,
        task_sha256=(prov.get("task") or {}).get("sha256"), target=result.get("target") or run.target,
        target_path=((prov.get("models") or {}).get("target") or {}).get("path"), seed=run.seed,
        searcher=result.get("searcher") or run.searcher, execution_style=run.execution_style,
        decoding=decoding,
        demonstrations=_demos_label(best.get("demos"), k),
        status=str(result.get("status", "?")), dev=best.get("dev"), confirm=best.get("confirm"),
        test=best.get("test"), test_ci95=ci if ci and all(math.isfinite(x) for x in ci) else None,
        verdict=sel.get("verdict"), selection_test=sel.get("test") or None, alpha=sel.get("alpha"),
        p_value=shipped_test.get("p_value"), p_adjusted=shipped_test.get("p_adjusted"),
        finalists=[{k_: f.get(k_) for k_ in ("candidate", "diff", "p_value", "p_adjusted", "significant")}
                   for f in finalists],
        sizes=dict(sel.get("sizes") or {}), apo_version=prov.get("apo"), git_commit=prov.get("git_commit"))


def _demos_label(ids: list[str] | None, k: int) -> str:
    if (near := nearest_k(ids)) is not None:
        return f"{nearest_phrase(near)}, chosen from the task's {k} training examples"
    if ids is None:
        return f"{k}, the run's fixed demonstrations (drawn from train with the seed)"
    return f"{k}, its own: " + ", ".join(ids) if ids else "none (its own choice)"


def _notes(result: dict, best: dict) -> list[str]:
    """What a user should know before shipping this prompt."""
    notes = []
    sel = result.get("selection") or {}
    if result.get("status") == "partial":
        notes.append(f"the run is partial ({result.get('stop_reason') or 'stopped by its budget'})")
    if not best.get("test"):
        notes.append("the prompt has no test score: the budget ran out before the test evaluation")
    if sel.get("verdict") == "not tested":
        notes.append("the prompt shipped without confirmation against the incumbent (verdict: not tested"
                     + (f"; {sel['note']}" if sel.get("note") else "") + ")")
    elif sel.get("verdict") == "no significant improvement":
        notes.append(f"no candidate beat the incumbent significantly: this is the incumbent "
                     f"({sel.get('incumbent_origin') or '?'})")
    return notes


# -- runs on disk --------------------------------------------------------------------------------

class RunEvalResult(BaseModel):
    """A run's shipped prompt scored again on the run's test examples with the run's own settings."""

    run_id: str = Field(description="The run.")
    task: str = Field(description="Task name.")
    model: str = Field(description="Target model.")
    prompt: str = Field(description="The instruction.")
    demos: list[str] | None = Field(description="Its own demonstrations' ids (None: the run's fixed ones).")
    acc: float | None = Field(description="Mean metric score now.")
    lp: float | None = Field(description="Mean gold log-probability now (None when the model has none).")
    n: int = Field(description="Test examples scored.")
    recorded_acc: float | None = Field(description="The test accuracy the run recorded (None: its budget ended first).")
    recorded_n: int = Field(description="Test examples behind it.")
    matches: bool = Field(description="Whether the score now equals the recorded one exactly.")
    same_data: bool | None = Field(description="Whether the task's examples are those the run used (None: unknown).")
    differing: list[int] = Field(description="Positions of the test examples whose score differs from the run's.")
    per_example: list[dict] = Field(description="Input, gold output, prediction and score of every example.")


def _open(run_id: str, runs_dir: str | Path | None) -> tuple[Any, dict, dict | None, Path]:
    from optimizer.run.store import RunStore

    store = RunStore.open(runs_dir, run_id)
    return store.id, store.read_config(), store.read_result(), store.path


def _run_task(config: RunConfig, task: Any, run_id: str) -> Any:
    """The task to score on: ``task`` (a Task or a name or path), else the run's own, loaded again."""
    from optimizer.tasks.task import Task, load_task

    if isinstance(task, Task):
        return task
    try:
        return load_task(str(task or config.task), data_dir=config.data_dir, seed=config.seed)
    except UsageError as exc:
        if task is not None:
            raise
        raise UsageError(f"{exc} (run {run_id} was on task {config.task!r}: give the task's folder as TASK, "
                         f"`apo eval PATH --from-run {run_id}`, or in Python evaluate_run(..., task=...))") from None


def export_prompt(run_id: str, runs_dir: str | Path | None = None) -> ExportedPrompt:
    """A stored run's shipped prompt exactly as its target saw it, with a manifest (``apo export``).

    Args:
        run_id: the run id under the runs folder, or a run folder.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).

    Returns:
        The prompt; a missing run, one that shipped nothing, or an AutoPrompt run raise :class:`UsageError`.
    """
    from optimizer.tasks.templates import execution_template

    name, config, result, _ = _open(run_id, runs_dir)
    best = shipped(result, config, name)
    near = nearest_k(best.get("demos")) is not None
    if not near and "demo_examples" in best:
        return shipped_prompt(result, config, run_id=name)
    run = RunConfig.model_validate(config["config"])  # the task is needed again
    task = _run_task(run, None, name)
    if not near:  # made before results listed their demonstrations: draw them again
        demos = execution_template(task, shots=run.shots, style=run.execution_style, seed=run.seed).demos
        return shipped_prompt(result, config, run_id=name, demonstrations=demos)
    recorded = ((config.get("provenance") or {}).get("task") or {}).get("sha256")  # each input's nearest: from train
    if recorded and task_fingerprint(task) != recorded:
        raise UsageError(f"run {name}'s prompt chooses its demonstrations from task {run.task!r}'s training "
                         "examples, and the task's data changed since the run; export it where the run's data is")
    return shipped_prompt(result, config, run_id=name, pool=task.train)


def evaluate_run(run_id: str, *, task: Any = None, runs_dir: str | Path | None = None,
                 data_dir: str | Path | None = None, cache: bool | None = None) -> RunEvalResult:
    """Score a run's shipped prompt (instruction and demonstrations) again on the run's test examples with the
    run's own configuration: target, shots, execution style, metric, seed and test limit (``apo eval --from-run``).

    Args:
        run_id: the run id under the runs folder, or a run folder.
        task: the task (a Task, name or path; default: the run's, loaded again).
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).
        data_dir: where the task's data is now (default: the run's data_dir).
        cache: read answers from the response cache (default: as the run did); False asks the model again.

    Returns:
        The score now, the recorded one, and whether they match exactly.
    """
    from optimizer.config import Budget
    from optimizer.run.engine import evaluate_prompt
    from optimizer.run.scoring import summarize
    from optimizer.types import prompt_key

    name, stored, result, where = _open(run_id, runs_dir)
    best = shipped(result, stored, name, adapters=True)
    step = adapter_step((result or {}).get("searcher"), best.get("text"))
    update: dict[str, Any] = {"budget": Budget()}  # a re-score of the test examples is never cut short
    update |= {"data_dir": str(data_dir)} if data_dir is not None else {}
    update |= {"cache": cache} if cache is not None else {}
    config = RunConfig.model_validate(stored["config"]).model_copy(update=update)
    loaded = _run_task(config, task, name)
    recorded_task = (stored.get("provenance") or {}).get("task") or {}
    same = task_fingerprint(loaded) == recorded_task["sha256"] if recorded_task.get("sha256") else None
    was = (result or {}).get("task") or recorded_task.get("name") or config.task
    if same is False and loaded.name != was:
        raise UsageError(f"run {name} was made on task {was!r}, not {loaded.name!r}; leave TASK out to use the run's")
    ids = [] if nearest_k(best.get("demos")) is not None else best.get("demos") or []
    missing = [i for i in ids if i not in {ex.id for ex in loaded.train}]
    if missing:
        raise UsageError(f"the shipped prompt's demonstrations {missing} are not training examples of task "
                         f"{loaded.name!r} as loaded now; the task's data changed since run {name}")
    folder = None if step is None else where / checkpoint_folder(step)
    _, examples, raw = evaluate_prompt(config, prompt_key(best["text"], best.get("demos")), split="test",
                                       limit=config.test_limit, task=loaded, adapter=folder)
    now, recorded, test_acc = summarize(raw), best.get("test") or {}, best.get("test_acc") or []
    return RunEvalResult(
        run_id=name, task=loaded.name, model=config.target, prompt=best["text"], demos=best.get("demos"),
        acc=now.acc, lp=now.lp, n=now.n, recorded_acc=recorded.get("acc"), recorded_n=recorded.get("n", 0),
        matches=recorded.get("acc") is not None and (now.acc, now.n) == (recorded["acc"], recorded["n"]),
        same_data=same, differing=[i for i, ex in enumerate(examples)
                                   if i >= len(test_acc) or raw[ex.id].acc != test_acc[i]],
        per_example=[{"input": ex.input, "gold": ex.output, "prediction": raw[ex.id].output, "acc": raw[ex.id].acc,
                      "lp": raw[ex.id].lp} for ex in examples])


def export_run(run_id: str, format: str = "text", runs_dir: str | Path | None = None) -> str:
    """A stored run's shipped prompt, written as ``apo export --format FORMAT`` writes it.

    Args:
        run_id: the run id under the runs folder, or a run folder.
        format: ``text`` (the prompt alone), ``json``, ``chat`` (OpenAI-style messages) or ``python`` (a module).
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).

    Returns:
        The text; the input is the placeholder ``{input}`` (``render(input)`` in the Python module).
    """
    return export_prompt(run_id, runs_dir).format_as(format)
