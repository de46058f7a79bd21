"""The options of the demos, joint and reflect searchers of ``apo optimize`` and ``apo submit``."""

from __future__ import annotations

import argparse

from optimizer.cli.argtypes import int_list, int_list_or_none

__all__ = ["REFLECT_HELP", "add_demos_and_reflect_groups"]

REFLECT_HELP = """Each round runs the beam's prompts on training examples, shows the proposer the ones they get
wrong (the answer given and the one expected), asks for a critique, then for a rewrite that fixes
it, and races the rewrites with the beam (--rounds rounds; default 3)."""


def add_demos_and_reflect_groups(opt: argparse.ArgumentParser) -> None:
    """The option groups of the demos, joint and reflect searchers."""
    demos = opt.add_argument_group("demonstrations (--searcher demos, or ape with --demo-search)")
    demos.add_argument("--demo-search", action="store_true",
                       help="APE: after the instruction rounds, search demonstration sets for the best instruction")
    demos.add_argument("--demo-sets", dest="sets", type=int, help="demonstration sets raced (default: 12)")
    demos.add_argument("--demo-k", dest="k", type=int_list, metavar="K[,K…]",
                       help="numbers of demonstrations tried in turn (default: 2,4,6,8,12,16)")
    demos.add_argument("--demo-nearest", dest="nearest", type=int_list_or_none, metavar="K[,K…]|none",
                       help="also race prompts showing each input its K most alike training examples, the nearest "
                            "last (default: 8; none: off)")
    demos.add_argument("--bootstrapped", type=float, metavar="FRACTION",
                       help="share of sets made of training examples the target already answers right (default: 0.5)")
    demos.add_argument("--bootstrap-pool", type=int, metavar="N",
                       help="training examples run to find those answered right (default: 24)")
    joint = opt.add_argument_group("joint search (--searcher joint; the demonstration options above draw its sets)")
    joint.add_argument("--instructions", type=int, help="instructions asked of the proposer (default: 6)")
    joint.add_argument("--joint-demo-sets", dest="demo_sets", type=int,
                       help="demonstration sets drawn (default: 6); the incumbent's own is added")
    joint.add_argument("--trials", type=int, help="TPE trials, one combination on one minibatch each (default: 24)")
    joint.add_argument("--top-combinations", type=int,
                       help="best combinations by mean minibatch score raced on the full dev set, each also "
                            "under the incumbent's instruction (default: 4)")
    ref = opt.add_argument_group("reflection (--searcher reflect)", REFLECT_HELP)
    ref.add_argument("--beam", type=int, help="best prompts kept and reflected on each round (default: 2)")
    ref.add_argument("--rewrites", type=int, help="critique-and-rewrite pairs per beam prompt each round (default: 2)")
    ref.add_argument("--minibatch", type=int,
                     help="reflect: training examples each beam prompt runs on per round to find its failures "
                          "(default: 12); joint: dev examples per trial (default: 8)")
    ref.add_argument("--failures-shown", type=int, help="failed examples shown in one critique (default: 4)")
    ref.add_argument("--max-minibatches", type=int, help="minibatches per round while a prompt has no failure (4)")
