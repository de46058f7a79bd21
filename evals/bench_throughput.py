"""Scoring throughput: apo's evaluator (log-probability scoring of instructions on examples)
next to the raw batched forward pass of the same model on the same tokens, in one run.

    python evals/bench_throughput.py --model embedded --task capitalize_words --candidates 8

The evaluator path includes everything a search pays for: rendering templates, tokenizing,
batching, the client (cache disabled, so every request reaches the model), journal events.
The raw path tokenizes once up front and times only the forward passes on the same batches:
``model(input_ids)`` (logits at every position, what a plain forward computes) and the
transformer body alone (no LM head), which no scorer can beat. The evaluator asks the model
for logits at the continuation positions only, so it can be faster than the plain forward.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from optimizer.models.client import Ledger, ModelClient
from optimizer.models.registry import load_model
from optimizer.run.scoring import InstructionScorer, Journal, JournalledEvaluator
from optimizer.tasks.metrics import resolve_metric
from optimizer.tasks.task import load_task
from optimizer.tasks.templates import execution_template


def _rates(seconds: float, pairs: int, tokens: int) -> dict:
    """Wall time and throughput of one way of scoring ``pairs`` (instruction, example) pairs of ``tokens`` tokens."""
    return {"seconds": round(seconds, 3), "examples_per_s": round(pairs / seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--task", default="capitalize_words")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--candidates", type=int, default=8, help="instructions scored (each on every example)")
    ap.add_argument("--examples", type=int, default=40)
    ap.add_argument("--shots", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2, help="timed repetitions of each path (best is kept)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    import torch

    adapter = load_model(args.model)
    task = load_task(args.task, data_dir=args.data_dir)
    examples = (task.dev + task.train)[: args.examples]
    template = execution_template(task, shots=args.shots, style="completion", seed=0)
    repeated = (task.instructions or ["Answer."]) * args.candidates
    instructions = [f"Instruction number {i}: {t}" for i, t in enumerate(repeated)][: args.candidates]
    n_pairs = len(instructions) * len(examples)

    # the evaluator path
    eval_times = []
    for _ in range(args.repeats):
        client = ModelClient(adapter, "target", Ledger(), cache=None)
        scorer = InstructionScorer(client, template, resolve_metric(task.metric, task.labels))
        evaluator = JournalledEvaluator(scorer, Journal(), lambda *e: None)
        start = time.perf_counter()
        evaluator.score(instructions, examples, "dev", accuracy=False, logprob=True)
        eval_times.append(time.perf_counter() - start)
    tokens = client.ledger.role("target").prompt_tokens

    # the raw path: the same token sequences, the same batch composition, forward only
    requests = [template.logprob_request(t, ex) for t in instructions for ex in examples]
    pairs = adapter._pair_ids([r.context for r in requests], [r.continuation for r in requests])
    seqs = sorted(((c + k)[:-1] for c, k in pairs), key=len, reverse=True)
    raw_tokens = sum(len(s) + 1 for s in seqs)
    bs = adapter.batch_size
    batches = []
    for i in range(0, len(seqs), bs):
        chunk = seqs[i : i + bs]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), adapter.pad_id, dtype=torch.long)
        for row, s in enumerate(chunk):
            ids[row, : len(s)] = torch.tensor(s)
        batches.append(ids)
    def timed(forward) -> float:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.inference_mode():
                for ids in batches:
                    forward(ids)
            best = min(best, time.perf_counter() - start)
        return best

    # full: logits over the vocabulary at every position (what a plain forward call computes);
    # body: the transformer alone, no LM head (a bound no scorer can beat)
    raw = timed(lambda ids: adapter.model(input_ids=ids, use_cache=False))
    body = timed(lambda ids: adapter.model.model(input_ids=ids, use_cache=False))
    ev = min(eval_times)
    figures = {
        "model": args.model, "task": task.name, "pairs": n_pairs, "tokens": tokens, "raw_tokens": raw_tokens,
        "batch_size": bs, "threads": torch.get_num_threads(),
        "evaluator": _rates(ev, n_pairs, tokens),
        "raw_forward": _rates(raw, n_pairs, raw_tokens),
        "raw_body_only": _rates(body, n_pairs, raw_tokens),
        "ratio": round((tokens / ev) / (raw_tokens / raw), 3),
        "ratio_body_only": round((tokens / ev) / (raw_tokens / body), 3),
    }
    print(f"model {args.model}, task {task.name}: {n_pairs} (instruction, example) pairs, {tokens} tokens, "
          f"batch {bs}, {figures['threads']} threads")
    evaluator, forward, body_only = figures["evaluator"], figures["raw_forward"], figures["raw_body_only"]
    print(f"  evaluator:   {evaluator['examples_per_s']:8.2f} examples/s  {evaluator['tokens_per_s']:8.1f} tokens/s")
    print(f"  raw forward: {forward['examples_per_s']:8.2f} examples/s  {forward['tokens_per_s']:8.1f} tokens/s")
    print(f"  raw forward, transformer body only (no LM head): {body_only['examples_per_s']:8.2f} examples/s  "
          f"{body_only['tokens_per_s']:8.1f} tokens/s")
    print(f"  evaluator / raw forward: {figures['ratio']:.1%}   "
          f"evaluator / body only: {figures['ratio_body_only']:.1%}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
