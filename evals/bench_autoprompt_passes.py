"""AutoPrompt's passes on a causal LM with the text before the trigger shared, against full passes: seconds to
compare candidate triggers on one batch, and seconds of one trigger gradient, on SST-2 sentences with the embedded
SmolLM2 (template ``{sentence} [T] [T] [T] [P] .``), one thread.

One iteration of the searcher does what is timed here: the gradient of the current trigger on ``--rows`` training
sentences, then ``--candidates`` candidate triggers and the current one on ``--rows`` other sentences (its
defaults: 32 and 10). ``APO_PREFIX_CACHE=0`` is the full-pass path.

Usage:

    OMP_NUM_THREADS=1 python evals/bench_autoprompt_passes.py --data-dir ../shared/data

Prints one line per path and order (full, shared, full, shared), so that the machine's drift shows, with the
largest difference from the full passes' log-probabilities and gradient; quote the ratio of one run.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from optimizer.models.embedded import load_embedded
from optimizer.search.autoprompt.cloze_model import ClozeModel
from optimizer.tasks.cloze import parse_template
from optimizer.tasks.task import load_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="the shared data folder (sst2/)")
    ap.add_argument("--rows", type=int, default=32, help="sentences a batch (the searcher's default batch sizes)")
    ap.add_argument("--candidates", type=int, default=10, help="candidate triggers compared with the current one")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = load_task("sst2", data_dir=args.data_dir)
    lm = load_embedded()
    cloze = ClozeModel(lm.model, lm.tokenizer, kind="causal")
    template = parse_template("{sentence} [T] [T] [T] [P] .")
    words = [cloze.word_id(w) for w in "the a of it was and is not very so film movie".split()]
    vocab = [w for w in words if w is not None]
    triggers = [[vocab[(i + k) % len(vocab)] for k in range(3)] for i in range(args.candidates + 1)]
    sentences = [ex.input for ex in task.train[: args.rows]]
    compared = [cloze.encode(template, s, t) for t in triggers for s in sentences]
    batch = compared[: args.rows]
    gold = lm.tokenizer(" good", add_special_tokens=False)["input_ids"][0]
    print(f"{len(compared)} rows compared ({args.candidates + 1} triggers x {args.rows} sentences), "
          f"{sum(len(e.ids) for e in compared)} tokens; gradient on {args.rows} rows", flush=True)
    reference: dict[str, torch.Tensor] = {}
    for path in ["full", "shared"] * 2:
        os.environ["APO_PREFIX_CACHE"] = "0" if path == "full" else "1"
        started = time.perf_counter()
        lp = cloze.logprobs(compared)
        compare_s = time.perf_counter() - started
        started = time.perf_counter()
        grad, _ = cloze.trigger_gradient(batch, triggers[0], lambda out: -out[:, gold].mean())
        grad_s = time.perf_counter() - started
        reference.setdefault("lp", lp)
        reference.setdefault("grad", grad)
        print(f"{path}: compare {compare_s:.2f} s, gradient {grad_s:.2f} s; largest difference from the first full "
              f"pass: log-probability {float((lp - reference['lp']).abs().max()):.2e}, gradient "
              f"{float((grad - reference['grad']).abs().max()):.2e} (largest gradient entry "
              f"{float(reference['grad'].abs().max()):.2f})", flush=True)


if __name__ == "__main__":
    main()
