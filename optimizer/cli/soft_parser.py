"""The ``--searcher`` option and the options of the trained searchers (prompt tuning, prefix tuning, P-tuning,
LoRA) of ``apo optimize`` and ``apo submit``."""

from __future__ import annotations

import argparse

from optimizer.cli.argtypes import positive, positive_float

__all__ = ["SEARCHERS", "add_searcher_arg", "add_soft_group"]

SEARCHERS = ["ape", "demos", "joint", "reflect", "autoprompt", "prompt-tuning", "prefix-tuning", "p-tuning", "lora",
             "baseline"]

SOFT_HELP = """Trained prompts (peft adapters) on a local model (--model embedded, hf:PATH; on a masked
LM through the manual cloze template and --label-words, as PET does): trained on the train split,
a checkpoint every --eval-every steps scored on dev as a candidate (early stopping picks the
best), shipped only when it beats the incumbent like any prompt. Each training example counts
twice (forward and backward) against --max-calls. A trained prompt works only on the model it
was trained on; the adapter is saved in the run folder (adapter/step-N/, peft's format)."""


def add_searcher_arg(opt: argparse.ArgumentParser) -> None:
    """``--searcher``."""
    opt.add_argument("--searcher", choices=SEARCHERS,
                     help="search strategy: demos (which demonstrations, how many, in what order, for the "
                          "incumbent's instruction; default: it beat the incumbent most often in the search "
                          "benchmark), ape (instructions written by a proposer LM), joint (instructions x "
                          "demonstration sets under a Bayesian optimizer, as MIPROv2), reflect (rewrites of the "
                          "best prompts from the training examples they get wrong), autoprompt (gradient-searched "
                          "trigger tokens in a cloze template; needs a local masked or causal LM), or a trained "
                          "prompt on a local model: prompt-tuning, prefix-tuning, p-tuning or lora (see below); "
                          "baseline searches nothing and ships the incumbent (k-shot prompting without "
                          "optimization)")


def add_soft_group(opt: argparse.ArgumentParser) -> None:
    """The trained searchers' options."""
    soft = opt.add_argument_group("trained prompts (--searcher prompt-tuning, prefix-tuning, p-tuning, lora)",
                                  SOFT_HELP)
    soft.add_argument("--steps", type=positive, help="optimizer steps (default: 150)")
    soft.add_argument("--train-batch-size", type=positive, metavar="N", help="training examples per step (default: 8)")
    soft.add_argument("--eval-every", type=positive, metavar="STEPS",
                      help="steps between checkpoints, each scored on dev (default: 25)")
    soft.add_argument("--learning-rate", type=positive_float, metavar="LR",
                      help="AdamW learning rate (default: 0.03 prompt tuning, 0.01 prefix tuning and P-tuning, "
                           "0.001 LoRA)")
    soft.add_argument("--virtual-tokens", type=positive, metavar="N",
                      help="virtual tokens of prompt tuning, prefix tuning and P-tuning (default: 8)")
    soft.add_argument("--init-text", metavar="TEXT",
                      help="prompt tuning: start the virtual tokens from this text's embeddings (default: sampled "
                           "vocabulary)")
    soft.add_argument("--encoder-hidden-size", type=positive, metavar="N",
                      help="P-tuning: hidden size of the prompt encoder (default: 128)")
    soft.add_argument("--lora-rank", type=positive, metavar="R", help="LoRA: rank (default: 8)")
    soft.add_argument("--lora-alpha", type=positive, metavar="A", help="LoRA: scaling numerator (default: 16)")
