"""Wall time of one APE job through the OpenAI adapter against llama.cpp's server on 127.0.0.1:
concurrency 1 against 4 (cache off), and a cache-warm rerun, printed as ratios from one run.

    python evals/bench_concurrency.py --json evals/results/concurrency_llama_cpp.json

Needs ``llama-cpp-python[server]`` (see README). The server runs the embedded SmolLM2 GGUF.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from optimizer import optimize
from optimizer.models.embedded import ensure


def start_server(threads: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(ensure("smollm2-135m-instruct")),
                             "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with opener.open(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"llama_cpp.server did not start; see {log.name}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="capitalize_words")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    proc, url = start_server(args.threads)
    cache_dir = tempfile.mkdtemp()
    os.environ["APO_CACHE_DIR"] = cache_dir
    job = dict(target="openai:smollm2", base_url=url, rounds=1, candidates=4, subsets=2, top_k=1, variations=2,
               dev_limit=10, test_limit=10, runs_dir=tempfile.mkdtemp())
    figures = {}
    try:
        for name, extra in (("concurrency_1", dict(concurrency=1, cache=False)),
                            ("concurrency_4", dict(concurrency=4, cache=False)),
                            ("cache_cold", dict(concurrency=4, cache=True)),
                            ("cache_warm", dict(concurrency=4, cache=True))):
            start = time.perf_counter()
            result = optimize(args.task, **job, **extra)
            figures[name] = {"seconds": round(time.perf_counter() - start, 2), "calls": result.calls,
                             "cache_hits": sum(u["cache_hits"] for u in result.usage.values()),
                             "best": result.best.text if result.best else None}
            print(f"{name:14s} {figures[name]['seconds']:8.2f} s  calls {result.calls:5d}  "
                  f"cache hits {figures[name]['cache_hits']}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    c1, c4, warm = (figures[k]["seconds"] for k in ("concurrency_1", "concurrency_4", "cache_warm"))
    figures["ratios"] = {"concurrency_4_over_1": round(c4 / c1, 3), "warm_over_concurrency_1": round(warm / c1, 3)}
    runs = ("concurrency_1", "concurrency_4", "cache_cold", "cache_warm")
    figures["same_best"] = len({figures[k]["best"] for k in runs}) == 1
    print(f"wall time, concurrency 4 / 1: {c4 / c1:.2f}; cache-warm rerun / concurrency 1: {warm / c1:.3f}; "
          f"same best instruction in all four: {figures['same_best']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"command": "python " + " ".join(sys.argv), "task": args.task, "server_threads": args.threads,
                       **figures}, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
