"""Service benchmark: ``apo serve`` under load, killed, and a sweep on 1 and 2 local workers.

Three parts, each on 127.0.0.1 only, bounded in count and time:

1. **Load**: ``--jobs`` fake-model jobs (``fake:upper``, one APE round, no cache; seed = job number)
   submitted by ``--clients`` concurrent clients, each then polling its jobs to their end. Reports jobs/s
   (jobs over the time from the first submission to the last job's end), API latency p50/p99 (every
   request: submissions and polls) and jobs lost (submitted but not complete at the end: must be 0).
2. **Kills**: the same, with the server SIGKILLed twice at random moments while jobs run (when a seeded
   random share of the jobs has ended) and started again at once on the same port; the clients wait
   through the outage. Jobs lost, duplicate scores in any journal, and jobs whose result differs from
   the same job in part 1 (all must be 0).
3. **Sweep**: ``--sweep-jobs`` short embedded-model jobs (3 bundled tasks x seeds, one APE round of 3
   candidates, 10 dev, 10 confirmation and 10 test examples) through ``apo sweep`` with 1 and then 2
   local workers (one torch thread each); the wall-time ratio, and whether both found the same prompts.

Usage (the committed results were made with the command in evals/README.md)::

    python evals/bench_service.py --out evals/results/service
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
JOB = {"target": "fake:upper", "rounds": 1, "cache": False}
FINAL = {"complete", "partial", "failed", "cancelled"}


class Server:
    """``apo serve`` in a subprocess on a fixed port of 127.0.0.1 (so that a restart keeps its URL)."""

    def __init__(self, root: Path, port: int, workers: int) -> None:
        self.root, self.port, self.workers = root, port, workers
        root.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.start()
        self.token = (root / "runs" / "service.token").read_text().strip()

    def start(self) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))},
               "PYTHONPATH": str(REPO), "APO_RUNS_DIR": str(self.root / "runs"),
               "APO_CACHE_DIR": str(self.root / "cache"), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "optimizer", "serve", "--port", str(self.port),
                                      "--workers", str(self.workers)], env=env, cwd=self.root,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"apo serve did not start: {line!r}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0


def duplicate_scores(runs: Path) -> int:
    """Score records (split, prompt, example, kind) written more than once in any run's journal."""
    dupes = 0
    for path in runs.glob("*/events.jsonl"):
        keys: Counter = Counter()
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "score":
                keys.update((event["split"], event["prompt_hash"], event["example"], k)
                            for k in ("acc", "lp") if k in event)
        dupes += sum(n - 1 for n in keys.values() if n > 1)
    return dupes


def load(root: Path, jobs: int, clients: int, workers: int, kills: int, seed: int, deadline_s: float,
         ) -> dict[str, Any]:
    """Part 1 (kills 0) or 2: submit, poll to the end, optionally killing the server as jobs end."""
    server = Server(root, _free_port(), workers)
    latencies: list[float] = []
    ids: dict[int, str] = {}
    finals: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    outages = [0.0]
    headers = {"Authorization": f"Bearer {server.token}"}
    give_up = time.monotonic() + deadline_s

    def request(http: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
        while True:  # through a server outage: connection errors are retried, and not timed
            if time.monotonic() > give_up:
                raise TimeoutError(f"{method} {path}: past the deadline")
            t = time.perf_counter()
            try:
                response = http.request(method, path, **kw)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            with lock:
                latencies.append(time.perf_counter() - t)
            response.raise_for_status()
            return response

    def client(k: int) -> None:
        mine = list(range(k, jobs, clients))
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            for n in mine:
                body = {"task": "capitalize_words", "config": {**JOB, "seed": n}}
                ids[n] = request(http, "POST", "/jobs", json=body).json()["id"]
            waiting = [ids[n] for n in mine]
            while waiting:
                time.sleep(0.5)
                for job_id in list(waiting):
                    job = request(http, "GET", f"/jobs/{job_id}").json()
                    if job["state"] in FINAL:
                        with lock:
                            finals[job_id] = job
                        waiting.remove(job_id)

    rng = random.Random(seed)
    marks = sorted(rng.uniform(0.15 + 0.7 * i / kills, 0.15 + 0.7 * (i + 1) / kills) for i in range(kills))
    killed_at: list[int] = []

    def killer() -> None:
        for mark in marks:
            while len(finals) < mark * jobs and time.monotonic() < give_up:
                time.sleep(0.05)
            down = time.monotonic()
            killed_at.append(len(finals))
            server.kill()
            server.start()
            outages[0] += time.monotonic() - down

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    if kills:
        threads.append(threading.Thread(target=killer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        listed = {j["id"]: j for j in http.get("/jobs").json()}
        results = {n: http.get(f"/jobs/{ids[n]}/result").json() for n in ids
                   if listed.get(ids[n], {}).get("state") == "complete"}
    server.stop()
    lost = sum(1 for n in range(jobs) if n not in ids or listed.get(ids[n], {}).get("state") != "complete")
    return {"jobs": jobs, "clients": clients, "workers": workers, "kills": len(killed_at),
            "killed_when_jobs_ended": killed_at, "seconds": round(elapsed, 1), "jobs_per_s": round(jobs / elapsed, 2),
            "requests": len(latencies), "latency_ms_p50": _pct(latencies, 0.50),
            "latency_ms_p99": _pct(latencies, 0.99),
            "latency_ms_mean": round(1000 * statistics.fmean(latencies), 1) if latencies else 0.0,
            "outage_s": round(outages[0], 1), "jobs_lost": lost, "duplicate_scores": duplicate_scores(root / "runs"),
            "_results": {n: (r["best"]["text"], r["best"]["test"], r["calls"]) for n, r in results.items()}}


SWEEP = """tasks: [capitalize_words, double_number, past_tense]
targets: [embedded]
searchers: [ape]
seeds: [{seeds}]
settings: {{ape: {{rounds: 1, candidates: 3}}, dev_limit: 10, test_limit: 10, confirm_limit: 10, cache: false}}
"""


def sweep_part(root: Path, jobs: int) -> dict[str, Any]:
    """Part 3: the same sweep with 1 and 2 local workers."""
    from optimizer import sweep

    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["PYTHONPATH"] = str(REPO)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "sweep.yaml"
    path.write_text(SWEEP.format(seeds=", ".join(map(str, range(max(1, jobs // 3))))))
    out: dict[str, Any] = {}
    shipped = {}
    for workers in (1, 2):
        runs = root / f"sweep{workers}"
        result = sweep(path, workers=workers, runs_dir=runs, new=True)
        states = Counter(o.state for o in result.outcomes)
        shipped[workers] = [json.loads((runs / j.run_id / "result.json").read_text())["best"]["text"]
                            for j in result.jobs]
        out[f"workers_{workers}"] = {"jobs": len(result.jobs), "seconds": result.seconds, "states": dict(states)}
    out["speedup_2_over_1"] = round(out["workers_1"]["seconds"] / out["workers_2"]["seconds"], 2)
    out["same_prompts"] = shipped[1] == shipped[2]
    return out


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# apo serve and apo sweep", "", f"Command: `{report['command']}`  ", f"Machine: {report['machine']}  ",
             f"Commit: {report['commit']}", "", "| part | jobs | clients | kills | seconds | jobs/s | requests | "
             "p50 ms | p99 ms | jobs lost | duplicate scores | results differing |", "|---|---|---|---|---|---|---|---|"
             "---|---|---|---|"]
    earlier = [f"- {p}: `{report[p]['command']}` (commit {report[p]['commit']})" for p in ("load", "kills", "sweep")
               if "command" in report.get(p, {})]
    if earlier:
        lines[5:5] = ["", "Parts kept from an earlier invocation:", *earlier]
    for name in ("load", "kills"):
        r = report.get(name)
        if r:
            lines.append(f"| {name} | {r['jobs']} | {r['clients']} | {r['kills']} | {r['seconds']} | {r['jobs_per_s']} "
                         f"| {r['requests']} | {r['latency_ms_p50']} | {r['latency_ms_p99']} | {r['jobs_lost']} | "
                         f"{r['duplicate_scores']} | {r.get('results_differing', '-')} |")
    s = report.get("sweep")
    if s:
        lines += ["", "| sweep | jobs | seconds | states |", "|---|---|---|---|"]
        lines += [f"| {w} worker(s) | {s[f'workers_{w}']['jobs']} | {s[f'workers_{w}']['seconds']} | "
                  f"{s[f'workers_{w}']['states']} |" for w in (1, 2)]
        lines += ["", f"2 workers over 1: {s['speedup_2_over_1']}x faster; same shipped prompts: {s['same_prompts']}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=200, help="jobs of the load and kill parts (default 200)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    p.add_argument("--workers", type=int, default=2, help="the server's --workers (default 2)")
    p.add_argument("--kills", type=int, default=2, help="server SIGKILLs in the kill part (default 2)")
    p.add_argument("--sweep-jobs", type=int, default=12, help="embedded-model jobs of the sweep part (default 12)")
    p.add_argument("--parts", default="load,kills,sweep", help="which parts to run (default: all three)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--deadline", type=float, default=3600, help="seconds a part may take before it gives up")
    p.add_argument("--out", default="evals/results/service",
                   help="writes OUT.json and OUT.md (parts not run this time are kept from an existing OUT.json)")
    args = p.parse_args()
    parts = set(args.parts.split(","))
    from optimizer.run.provenance import git_commit

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report: dict[str, Any] = {"command": " ".join(["python", *sys.argv]), "commit": git_commit(), "machine": machine}
    tmp = Path(tempfile.mkdtemp(prefix="apo-bench-service-"))
    try:
        if "load" in parts:
            report["load"] = load(tmp / "load", args.jobs, args.clients, args.workers, 0, args.seed, args.deadline)
            print("load:", {k: v for k, v in report["load"].items() if not k.startswith("_")}, flush=True)
        if "kills" in parts:
            report["kills"] = load(tmp / "kills", args.jobs, args.clients, args.workers, args.kills, args.seed,
                                   args.deadline)
            if "load" in report:
                a, b = report["load"]["_results"], report["kills"]["_results"]
                report["kills"]["results_differing"] = sum(1 for n in b if a.get(n) != b[n])
            print("kills:", {k: v for k, v in report["kills"].items() if not k.startswith("_")}, flush=True)
        if "sweep" in parts:
            report["sweep"] = sweep_part(tmp / "sweep", args.sweep_jobs)
            print("sweep:", report["sweep"], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for part in ("load", "kills"):
        report.get(part, {}).pop("_results", None)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.with_suffix(".json").exists():  # parts run separately: keep the ones not run this time, with their commands
        earlier = json.loads(out.with_suffix(".json").read_text())
        for part in ("load", "kills", "sweep"):
            if part not in report and part in earlier:
                report[part] = {**earlier[part], "command": earlier[part].get("command", earlier.get("command")),
                                "commit": earlier[part].get("commit", earlier.get("commit"))}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(report))
    print(_markdown(report))
    bad = sum(report.get(p, {}).get(k, 0) or 0 for p in ("load", "kills")
              for k in ("jobs_lost", "duplicate_scores", "results_differing"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
