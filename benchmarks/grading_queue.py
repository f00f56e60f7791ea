"""How the grading queue scales, with cheap simulated jobs (real notebooks take 5-10 CPU-seconds
each, too many for this 2-core machine to show more than two workers).

    python benchmarks/grading_queue.py [--jobs 40] [--seconds 0.5] [--workers 1 2 4]

Starts a redis-server on loopback (a password, a free port, a temporary folder) and N worker
processes with the grading queue's own Celery settings (:func:`dlcourse.grading.jobqueue.make_app`:
JSON, acks_late, one job at a time per worker). Each simulated job *sleeps* for --seconds (a
grading machine busy elsewhere) and stores its reply under a key, as a real worker does; the
coordinator waits for every reply. Prints:

- jobs per minute against the number of workers (and the ideal, workers x 60 / seconds);
- the queue's overhead per job in ms (jobs of 0 s, one worker), next to the local run's (one
  process per job from multiprocessing's forkserver, as ``dlcourse grade`` without --queue; a
  queue worker starts that same process, so the queue's cost comes on top of it).

Measured on the 2-core development machine (0.5 s jobs, 40 per run): 1 worker 119 jobs/min
(ideal 120), 2: 227 (240), 4: 439 (480); overhead per job: local 34.8 ms, queue +3.1 ms.
"""
from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `queue` (which redis imports): run as a script,
# its own folder must not stand first on sys.path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def simulated_app(url: str):
    from dlcourse.grading.jobqueue import make_app

    app = make_app(url)

    @app.task(name="dlcourse.bench.simulate", bind=True, acks_late=True, ignore_result=True)
    def simulate(task, key: str, seconds: float):
        import redis
        if seconds:
            time.sleep(seconds)
        redis.Redis.from_url(url).set("bench:done:" + key, "{}", ex=3600)

    return app, simulate


def worker(url: str) -> None:
    app, _ = simulated_app(url)
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", "-Q", "dlcourse-grade", "-n",
                     f"bench-{os.getpid()}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle"])


def run(url: str, r, jobs: int, seconds: float) -> float:
    _, simulate = simulated_app(url)
    keys = [uuid.uuid4().hex for _ in range(jobs)]
    t0 = time.perf_counter()
    for key in keys:
        simulate.apply_async(args=[key, seconds], task_id=key, queue="dlcourse-grade")
    names = ["bench:done:" + k for k in keys]
    while r.exists(*names) < jobs:
        time.sleep(0.005)
    return time.perf_counter() - t0


def local_overhead(jobs: int) -> float:
    from dlcourse.grading.runner import _context
    ctx = _context()
    warm = ctx.Process(target=time.sleep, args=(0,))
    warm.start()
    warm.join()                 # the forkserver's imports, paid once per run, not per job
    t0 = time.perf_counter()
    for _ in range(jobs):
        p = ctx.Process(target=time.sleep, args=(0,))
        p.start()
        p.join()
    return (time.perf_counter() - t0) / jobs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--overhead-jobs", type=int, default=200)
    ap.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)
    import redis
    tmp = Path(tempfile.mkdtemp(prefix="dlqbench"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_hex(16)
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp),
                               "--save", "", "--appendonly", "no", "--requirepass", password],
                              stdout=subprocess.DEVNULL)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    r = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen] = []
    try:
        print(f"simulated jobs of {args.seconds} s (sleeping), {args.jobs} per run; {os.cpu_count()} cores here")
        print(f"{'workers':>8} {'seconds':>8} {'jobs/min':>9} {'ideal':>7}")
        for n in args.workers:
            while len(procs) < n:
                procs.append(subprocess.Popen([sys.executable, __file__, "--worker", url], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            run(url, r, n * 2, 0)          # every worker up and consuming
            elapsed = run(url, r, args.jobs, args.seconds)
            print(f"{n:>8} {elapsed:>8.2f} {args.jobs / elapsed * 60:>9.0f} {n * 60 / args.seconds:>7.0f}")
        for p in procs[1:]:
            p.terminate()
            p.wait()
        procs = procs[:1]
        run(url, r, 5, 0)
        queue = run(url, r, args.overhead_jobs, 0) / args.overhead_jobs
        local = local_overhead(min(args.overhead_jobs, 50))
        print(f"\noverhead per job: local {local * 1000:.1f} ms (a grading process from the forkserver, started and joined)")
        print(f"                  queue +{queue * 1000:.1f} ms (publish, deliver, ack, reply; one worker, 0 s jobs;"
              " its worker then starts the same grading process)")
        print("(a real submission takes 5-10 CPU-seconds: both are well under 1% of it)")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
