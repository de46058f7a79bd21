"""A cloze adapter's LM head on the prediction slot only, against every position: seconds per scoring pass and per
training pass (forward and backward) of SST-2 sentences, prompt tuning on the embedded SmolLM2, one thread.

Usage:

    OMP_NUM_THREADS=1 python evals/bench_soft_head.py --data-dir ../shared/data

Prints one line per pass kind and order (slot, every position, slot, every position), so that the machine's drift
shows; quote the ratio of one run.
"""

from __future__ import annotations

import argparse
import time

import torch

from optimizer.models.embedded import load_embedded
from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
from optimizer.search.soft.cloze import ClozeSoftModel
from optimizer.settings import SoftConfig
from optimizer.tasks.cloze import parse_template
from optimizer.tasks.task import load_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="the shared data folder (sst2/)")
    ap.add_argument("--rows", type=int, default=16, help="sentences a pass")
    ap.add_argument("--passes", type=int, default=6, help="scoring passes timed (half as many training passes)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = load_task("sst2", data_dir=args.data_dir)
    lm = load_embedded()
    cloze = ClozeModel(lm.model, lm.tokenizer, kind="causal")
    verb = Verbalizer(cloze, {"negative": ["bad"], "positive": ["good"]})
    soft = ClozeSoftModel("prompt-tuning", SoftConfig(), cloze, parse_template("{sentence} It was [P] ."), verb, 0)
    batches = [task.train[i * args.rows:(i + 1) * args.rows] for i in range(args.passes)]

    def every_position(examples):  # the logits of every position, read at the slot (virtual tokens first)
        ids, mask, predict = cloze._batch(soft._encode(examples))
        logits = soft.model(input_ids=ids, attention_mask=mask).logits[:, -ids.shape[1]:]
        rows = torch.arange(len(examples))
        return verb.score(torch.log_softmax(logits[rows, predict].float(), -1), [verb.gold(e.output) for e in examples])

    for name, fn in [("slot", soft._class_logprobs), ("every position", every_position)] * 2:
        started = time.perf_counter()
        with torch.inference_mode():
            for b in batches:
                fn(b)
        score = (time.perf_counter() - started) / len(batches)
        started = time.perf_counter()
        for b in batches[: len(batches) // 2]:
            lp, _ = fn(b)
            (-lp.mean()).backward()
        train = (time.perf_counter() - started) / (len(batches) // 2)
        print(f"{name}: scoring {score:.3f} s, forward+backward {train:.3f} s ({args.rows} rows a pass)", flush=True)


if __name__ == "__main__":
    main()
