"""Automatic label-word search (AutoPrompt, Shin et al. 2020, section 2.2).

The template is filled with the starting trigger, the hidden state that the LM head reads at
the ``[P]`` slot is collected for training examples, and a logistic classifier is fitted to
predict each example's class from it. Because the LM head scores a token by the dot product
of that hidden state with the token's output embedding, the classifier's weights applied to
every output embedding rank the vocabulary per class; the top ``k`` tokens of each class
(by its score minus the mean over classes, excluding special tokens and word pieces) become
its label words.

Imports torch.
"""

from __future__ import annotations

import torch

from optimizer.errors import UsageError
from optimizer.search.autoprompt.cloze_model import ClozeModel
from optimizer.tasks.cloze import ClozeTemplate

__all__ = ["find_label_words"]


def find_label_words(model: ClozeModel, template: ClozeTemplate, task, k: int, *, seed: int = 0,
                     max_examples: int = 512, steps: int = 300) -> dict[str, list[str]]:
    """Find ``k`` label words per class of a classification task.

    Args:
        model: the cloze model.
        template: the search template (its trigger slots hold the mask token, or ``the`` for a causal LM).
        task: the task; its ``labels`` (or the distinct training outputs) are the classes.
        k: words per class.
        seed: seeds the classifier's initialisation.
        max_examples: training examples used.
        steps: optimisation steps of the classifier.

    Returns:
        ``{class: [k words]}``, each word a single token of the model.

    Raises:
        UsageError: fewer than two classes among the training outputs.
    """
    from optimizer.search.autoprompt.tokens import token_filter

    classes = list(task.labels or sorted({ex.output for ex in task.train}))
    train = [ex for ex in task.train if ex.output in classes][:max_examples]
    if len({ex.output for ex in train}) < 2:
        raise UsageError(f"task {task.name!r}: automatic label words need a classification task with at least two "
                         "classes among the training outputs; pass --label-words instead")
    trigger = (model.filler_id,) * template.n_triggers
    hidden = model.predict_hidden([model.encode(template, ex.input, trigger) for ex in train]).float()
    y = torch.tensor([classes.index(ex.output) for ex in train], device=hidden.device)
    mean, scale = hidden.mean(0), hidden.std() + 1e-6  # one scale for all dimensions keeps the geometry
    x = (hidden - mean) / scale
    gen = torch.Generator().manual_seed(seed)
    weight = (torch.randn(len(classes), x.shape[1], generator=gen) * 0.01).to(x.device).requires_grad_(True)
    bias = torch.zeros(len(classes), device=x.device, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=0.01, weight_decay=1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model.head.weight.float()  # vocab x hidden
        scores = out @ weight.T  # vocab x classes: each token's embedding along the classifier's directions
        margin = scores - scores.mean(-1, keepdim=True)
        margin[token_filter(model.tokenizer, model.vocab_size, subwords=True).to(margin.device)] = float("-inf")
    words: dict[str, list[str]] = {}
    taken: set[int] = set()
    for c, label in enumerate(classes):
        chosen = []
        for tid in margin[:, c].argsort(descending=True).tolist():
            if tid in taken:
                continue
            word = model.token_text(tid)
            if any(ch.isalnum() for ch in word) and model.word_id(word) == tid:
                chosen.append(word)
                taken.add(tid)
            if len(chosen) == k:
                break
        words[label] = chosen
    return words
