"""Run configuration: one pydantic model built by the CLI and the Python API alike, from flat option
names (:meth:`RunConfig.from_options`) or a YAML or JSON job file (:meth:`RunConfig.from_file`)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optimizer.errors import UsageError
from optimizer.settings import (
    APEConfig,
    AutoPromptConfig,
    Budget,
    DemosConfig,
    JointConfig,
    RacingConfig,
    ReflectConfig,
    SelectionConfig,
    SoftConfig,
)
from optimizer.yaml_files import load_yaml

__all__ = ["APEConfig", "AutoPromptConfig", "Budget", "DemosConfig", "JointConfig", "RacingConfig", "ReflectConfig",
           "RunConfig", "SelectionConfig", "SoftConfig", "load_job_file", "migrate_config"]


def check_base_url(value: str | None) -> str | None:
    """An API base URL as given, refused unless it is ``http(s)://host[:port][/path]``."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL ({exc}); give e.g. http://127.0.0.1:8080/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL; give e.g. http://127.0.0.1:8080/v1")
    return value


class RunConfig(BaseModel):
    """Everything that defines an optimization job. Stored as ``runs/<id>/config.json``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    task: str
    """A bundled task name, a task folder/file, or an instruction-induction task under data_dir."""
    data_dir: str | None = None
    """Folder of external task data (e.g. ../shared/data/instruction_induction)."""
    searcher: str = "demos"
    """Which search strategy: ``demos`` (default: which demonstrations, how many, in what order; the searcher that
    beat the incumbent most often in evals/bench_search.py), ``ape`` (instructions written by a proposer LM),
    ``joint`` (instructions × demonstration sets under a Bayesian optimizer, as MIPROv2), ``reflect`` (rewrites
    of the best prompts from the training examples they get wrong), ``autoprompt`` (gradient-searched trigger
    tokens; a masked LM or a local causal LM), ``prompt-tuning``, ``prefix-tuning``, ``p-tuning``, ``lora`` (peft
    adapters trained on a local model's weights), ``baseline`` (no search), or the ``name`` of a searcher object
    given to ``optimize(searcher=...)`` (see ``optimizer.run.context.Searcher``)."""
    initial_prompt: str | None = None
    """The user's own instruction: the incumbent every candidate must beat, raced and refined like any candidate
    (default: the task's best human instruction on dev, or no instruction)."""
    target: str = "embedded"
    """The model that executes candidate prompts (``embedded``, ``hf:PATH``, ``fake:NAME``)."""
    proposer: str | None = None
    """The model that writes candidate instructions; defaults to the target."""
    metric: str | None = None
    """Override the task's metric."""
    shots: int | None = Field(default=None, ge=0)
    """Demonstrations in the execution template; defaults to the task's."""
    execution_style: Literal["completion", "chat"] = "completion"
    """How a prompt is shown to the target: ``completion`` (raw text continued by the model) or ``chat`` (one user
    message through the model's chat template)."""
    scoring: Literal["accuracy", "logprob"] = "accuracy"
    """Candidate score: execution accuracy under the metric, or the gold output's log-probability."""
    tiebreak_logprob: bool = True
    """With accuracy scoring, also compute the gold log-probability and break ties with it."""
    dev_limit: int | None = Field(default=50, ge=1)
    """Most dev examples raced on (the task's dev split shuffled by the seed, after the confirmation examples of
    ``selection.confirm_limit`` are set aside)."""
    test_limit: int | None = Field(default=None, ge=1)
    """Most test examples in the final report (None: all)."""
    train_limit: int | None = Field(default=None, ge=1)
    """Most training examples the search may use (demonstrations, proposals, failures, training): a sample of the
    train split chosen by the seed, a larger limit keeping every example of a smaller one (None: all)."""
    seed: int = 0
    """Seeds demonstration sampling, proposals and sampling; same seed, same result."""
    racing: RacingConfig = Field(default_factory=RacingConfig)
    """Successive-halving racing of candidates over dev examples (every searcher, and the human baselines)."""
    ape: APEConfig = Field(default_factory=APEConfig)
    """APE parameters."""
    autoprompt: AutoPromptConfig = Field(default_factory=AutoPromptConfig)
    """AutoPrompt parameters (used with ``searcher="autoprompt"``)."""
    demos: DemosConfig = Field(default_factory=DemosConfig)
    """Demonstration-search parameters (``searcher="demos"``, or APE with ``demo_search``)."""
    reflect: ReflectConfig = Field(default_factory=ReflectConfig)
    """Reflection parameters (``searcher="reflect"``)."""
    joint: JointConfig = Field(default_factory=JointConfig)
    """Joint instruction × demonstration search parameters (``searcher="joint"``)."""
    soft: SoftConfig = Field(default_factory=SoftConfig)
    """Trained-prompt parameters (``searcher="prompt-tuning"``, ``"prefix-tuning"``, ``"p-tuning"``, ``"lora"``)."""
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    """Which prompt ships: finalists confirmed against the incumbent on dev examples racing never saw."""
    budget: Budget = Field(default_factory=Budget)
    """Limits on calls, tokens and time."""
    cache: bool = True
    """Use the on-disk response cache."""
    base_url: str | None = None
    """Base URL of an OpenAI-compatible server for ``openai:`` models (default: $OPENAI_BASE_URL)."""
    request_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for one API response; a request that takes longer is retried like a 5xx."""
    prices: str | None = None
    """JSON file of model prices overriding the built-in table (default: $APO_PRICES)."""
    concurrency: int = Field(default=4, ge=1)
    """Requests in flight at once per API provider, proposer and target together (local models batch instead)."""
    score_batch_size: int = Field(default=64, ge=1)
    """Scoring requests (prompt x example) sent to the model client at once."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return check_base_url(value)

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, value: Any) -> Any:
        return migrate_config(value) if isinstance(value, dict) else value

    @classmethod
    def from_options(cls, task: str | None = None, *, option_names: Mapping[str, str] | None = None,
                     **options: Any) -> RunConfig:
        """A configuration from flat option names: the one mapping behind the CLI and the Python API.

        Names: every ``RunConfig`` field; ``max_calls``, ``max_tokens``, ``max_seconds``, ``max_cost``
        (``budget``); ``race_min_examples``, ``race_eta``, ``race_rule``, ``race_delta`` (``racing``); the chosen
        searcher's fields (APE: ``candidates`` …; AutoPrompt: ``cloze_template``, ``token_candidates`` …); sections
        (``ape=APEConfig(...)``, ``budget={"max_calls": 50}``), which flat names override field by field; and
        the names used before the renames (``dev_size``, ``test_size``, ``template``, ``batch_size``; with
        AutoPrompt also ``candidates``, meaning ``token_candidates``).

        Args:
            task: a bundled task name, a task folder or file (or give ``task=``).
            option_names: how the caller's user typed each flat name (``{"max_calls": "--budget-calls"}``), for
                the messages of bad values.
            **options: the options, by the names above.

        Returns:
            The validated configuration. An unknown name (with the closest known ones), an option of the
            searcher not chosen, or a bad value (which option, what was wrong, what is expected) raise
            :class:`~optimizer.errors.UsageError`.
        """
        data, flat = _nest(task, options)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise UsageError(_explain(exc, flat, option_names or {})) from None

    @classmethod
    def from_file(cls, path: str | Path, task: str | None = None, *, option_names: Mapping[str, str] | None = None,
                  **overrides: Any) -> RunConfig:
        """A configuration from a YAML or JSON job file (see :func:`load_job_file`) and options that override it.

        Args:
            path: the job file: the names :meth:`from_options` takes, or the nested shape (``ape: {rounds: 1}``).
            task: overrides the file's ``task``.
            option_names: how the user typed the overrides (see :meth:`from_options`).
            **overrides: options that replace the file's (flat names or whole sections).

        Returns:
            The validated configuration; a missing file, bad YAML or JSON, an unknown name (naming the
            file) or a bad value raise :class:`~optimizer.errors.UsageError`.
        """
        data = load_job_file(path)
        unknown = [key for key in data if _home(key) is None and key not in {**_RENAMED, **_RENAMED_AUTOPROMPT}]
        if unknown:
            raise UsageError(f"{path}: {_unknown_message(unknown)}")
        try:
            return cls.from_options(option_names={k: v for k, v in (option_names or {}).items() if k in overrides},
                                    **{**data, **overrides, **({'task': task} if task is not None else {})})
        except UsageError as exc:
            raise UsageError(f"{exc} (job file {path} with the options given)") from None


_RENAMED = {"template": "execution_style", "dev_size": "dev_limit", "test_size": "test_limit",
            "batch_size": "score_batch_size"}
_RENAMED_AUTOPROMPT = {"template": "cloze_template", "candidates": "token_candidates",
                       "batch_size": "gradient_batch_size"}


def migrate_config(data: dict[str, Any]) -> dict[str, Any]:
    """A stored run configuration in today's field names.

    Configurations written before the field renames (schema 1: ``template``, ``dev_size``,
    ``test_size``, ``batch_size``, racing inside ``ape``) still load, so old runs resume.

    Args:
        data: a ``RunConfig`` as stored in ``config.json``.

    Returns:
        The same configuration with today's names (a new dict; ``data`` is not changed).
    """
    out = {_RENAMED.get(k, k): v for k, v in data.items()}
    ape = dict(out.get("ape") or {})
    racing = dict(out.get("racing") or {})
    for old, new in (("race_min_examples", "min_examples"), ("race_eta", "eta")):
        if old in ape:
            racing.setdefault(new, ape.pop(old))
    if ape or "ape" in out:
        out["ape"] = ape
    if racing:
        out["racing"] = racing
    if isinstance(out.get("autoprompt"), dict):
        out["autoprompt"] = {_RENAMED_AUTOPROMPT.get(k, k): v for k, v in out["autoprompt"].items()}
    if isinstance(out.get("soft"), dict) and "train_size" in out["soft"]:  # now every searcher's train_limit
        soft = dict(out["soft"])
        out.setdefault("train_limit", soft.pop("train_size"))
        out["soft"] = soft
    return out


# -- flat options -> nested configuration ------------------------------------------------------

_SECTIONS: dict[str, type[BaseModel]] = {"ape": APEConfig, "autoprompt": AutoPromptConfig, "budget": Budget,
                                         "demos": DemosConfig, "joint": JointConfig, "racing": RacingConfig,
                                         "reflect": ReflectConfig, "selection": SelectionConfig, "soft": SoftConfig}
_SEARCHER_SECTIONS = {"ape": ("ape", "demos"), "autoprompt": ("autoprompt",), "baseline": ("autoprompt",),
                      "demos": ("demos",), "joint": ("joint", "demos"), "reflect": ("reflect",),
                      "prompt-tuning": ("soft", "autoprompt"), "prefix-tuning": ("soft", "autoprompt"),
                      "p-tuning": ("soft", "autoprompt"), "lora": ("soft", "autoprompt")}
"""The sections whose flat options each built-in searcher takes (APE runs the demos search with demo_search; the
trained searchers read the cloze template and label words of a masked LM from AutoPrompt's)."""
_OWNER = {"ape": "APE", "autoprompt": "AutoPrompt", "demos": "demos", "joint": "joint", "reflect": "reflect",
          "soft": "trained-prompt (prompt-tuning, prefix-tuning, p-tuning, lora)"}
"""Searcher sections and how messages name them."""
_RACING_FLAT = {"race_min_examples": "min_examples", "race_eta": "eta", "race_rule": "rule", "race_delta": "delta"}
_HINTS = {"budget_calls": "max_calls", "budget_tokens": "max_tokens", "budget_time": "max_seconds", "model": "target",
          "no_cache": "cache", "keep_subwords": "filter_subwords", "batch_size_grad": "gradient_batch_size"}  # CLI


def _home(name: str, searcher: Any = "demos") -> tuple[str, ...] | None:
    """Where a flat option goes in the nested configuration (None: not an option).

    A name several searchers use (``rounds``, ``temperature`` …) goes to the chosen searcher's section.
    """
    if name in RunConfig.model_fields:
        return (name,)
    if name in _RACING_FLAT:
        return ("racing", _RACING_FLAT[name])
    mine = _SEARCHER_SECTIONS.get(searcher, ())
    order = ("budget", "selection", *mine, *(s for s in _OWNER if s not in mine))
    return next(((section, name) for section in order if name in _SECTIONS[section].model_fields), None)


def searcher_section(name: str, searcher: str) -> str | None:
    """The searcher section a flat option goes to for ``searcher`` (None: a run, budget, selection or racing
    option, or no option)."""
    home = _home(name, searcher)
    return home[0] if home is not None and home[0] in _OWNER else None


def _unknown_message(names: list[str]) -> str:
    known = sorted({*RunConfig.model_fields, *_RACING_FLAT, *(f for m in _SECTIONS.values() for f in m.model_fields)})
    parts = []
    for name in names:
        hint = [_HINTS[name]] if name in _HINTS else []
        close = dict.fromkeys(hint + difflib.get_close_matches(name, known, n=3))
        parts.append(repr(name) + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    return (f"unknown option{'s' * (len(names) > 1)} {', '.join(parts)}; see `apo optimize --help` and the fields of "
            "RunConfig, Budget, APEConfig and AutoPromptConfig (optimizer/config.py)")


def _section(name: str, value: Any) -> dict[str, Any]:
    value = value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value
    if not isinstance(value, Mapping):
        raise UsageError(f"{name} must be {_SECTIONS[name].__name__}(...) or a mapping, not {type(value).__name__}")
    return dict(value)


def _nest(task: str | None, options: dict[str, Any]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The nested configuration for flat ``options``, and the flat name behind each nested field."""
    data = {**options, **({"task": str(task)} if task is not None else {})}
    if data.get("task") is None:
        raise UsageError("no task given: name a bundled task (`apo tasks list`), a task folder or file, "
                         "or set task in the job file")
    searcher = data.get("searcher", RunConfig.model_fields["searcher"].default)
    for name, new in {**_RENAMED, **(_RENAMED_AUTOPROMPT if searcher == "autoprompt" else {})}.items():
        if name in data and new in data:
            raise UsageError(f"{name!r} is the old name of {new!r} here; give one of them, {new!r}")
        if name in data:
            data[new] = data.pop(name)
    if isinstance(data.get("initial_prompt"), str) and data["initial_prompt"].startswith("@"):
        data["initial_prompt"] = _read_prompt_file(data["initial_prompt"][1:])
    homes = {name: home for name in data if (home := _home(name, searcher)) is not None}
    unknown = [name for name in data if name not in homes]
    if unknown:
        raise UsageError(_unknown_message(unknown))
    out = {name: _section(name, data.pop(name)) for name in _SECTIONS if data.get(name) is not None}
    flat: dict[tuple[str, ...], str] = {}
    for name, value in data.items():
        home = homes[name]
        if len(home) == 1 and name not in _SECTIONS:
            out[name] = value
        elif len(home) == 2:
            out.setdefault(home[0], {})[home[1]] = value
        flat[home] = name
    _check_searcher(searcher, flat, default="searcher" not in data)
    return out, flat


def _read_prompt_file(path: str) -> str:
    """The prompt in a file given as ``@FILE`` (surrounding blank lines dropped)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"initial prompt file {p} not found" + (" (it is a folder)" if p.is_dir() else "")
                         + "; give --initial-prompt TEXT, or @FILE naming a text file")
    try:
        return p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"initial prompt file {p} cannot be read as UTF-8 text: {exc}") from None


def _check_searcher(searcher: Any, flat: dict[tuple[str, ...], str], default: bool = False) -> None:
    """Refuse flat options that only a searcher other than the chosen one takes."""
    if searcher not in _SEARCHER_SECTIONS:  # a searcher object's name: RunConfig's validation judges the rest
        return
    wrong = [(home[0], name) for home, name in flat.items()
             if len(home) == 2 and home[0] in _OWNER and home[0] not in _SEARCHER_SECTIONS[searcher]]
    if wrong:
        names = sorted(name for _, name in wrong)
        owners = sorted({section for section, _ in wrong})
        raise UsageError(f"{', '.join(names)}: {' and '.join(_OWNER[o] for o in owners)} option{'s' * (len(names) > 1)}"
                         f", but the searcher is {searcher}{' (the default)' * default}; choose searcher "
                         f"{' or '.join(owners)} ({' or '.join('--searcher ' + o for o in owners)}) or leave "
                         f"{'them' if names[1:] else 'it'} out")


def _explain(exc: ValidationError, flat: dict[tuple[str, ...], str], names: Mapping[str, str]) -> str:
    """A validation error as lines a person can act on: the option, what was wrong, what is expected."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        dotted = ".".join(loc)
        if loc in flat and flat[loc] in names:
            where = names[flat[loc]]
        else:
            where = f"{flat[loc]} ({dotted})" if flat.get(loc, dotted) != dotted else dotted
        if err["type"] == "extra_forbidden":
            fields = list(_SECTIONS[loc[0]].model_fields) if len(loc) == 2 and loc[0] in _SECTIONS else []
            close = " or ".join(map(repr, difflib.get_close_matches(loc[-1], fields)))
            lines.append(f"{where}: unknown field" + (f"; did you mean {close}?" if close else ""))
        elif err["type"] == "missing":
            lines.append(f"{where}: required")
        else:
            got = f"{err['input']}" if where.startswith("--") else f"{err['input']!r}"
            lines.append(f"{where}: {err['msg'][0].lower()}{err['msg'][1:]}, got {got}")
    return "invalid option" + ("s:\n  " if len(lines) > 1 else " ") + "\n  ".join(lines)


def load_job_file(path: str | Path) -> dict[str, Any]:
    """The options in a YAML or JSON job file (``.json``: JSON; otherwise YAML).

    Args:
        path: the file, holding one mapping: the names :meth:`RunConfig.from_options` takes (dashes read as
            underscores) or the nested shape; a stored ``runs/<id>/config.json`` gives its ``config``.

    Returns:
        The mapping, names not yet checked.

    Raises:
        UsageError: the file is missing, is not valid YAML or JSON, or holds no mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"job file {p} not found" + (" (it is a folder)" if p.is_dir() else ""))
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{p}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    else:
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
            raise UsageError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UsageError(f"{p}: a job file holds one mapping of option names to values (e.g. `task: sum` and "
                         f"`rounds: 1` on their own lines), not a {type(data).__name__}")
    if isinstance(data.get("config"), dict) and set(data) <= {"config", "run_id", "provenance", "schema"}:
        data = data["config"]  # a stored runs/<id>/config.json
    return {str(k).replace("-", "_"): v for k, v in data.items()}
