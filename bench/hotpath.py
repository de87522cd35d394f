"""The hot path, measured in isolation: one smyth binary serving bench/handlers/noop.py, `wrk` against
it, and the server's own CPU (utime + stime from /proc/<pid>/stat, the Rust side only: workers are
other processes) before and after, divided by the requests wrk counted.

    python bench/hotpath.py BINARY [BINARY ...] [--rounds 3] [--duration 5] [--conns 1,2]

Binaries are interleaved round by round; each line prints req/s, p50 and Rust-side µs per request,
and the medians come last. bench.py imports `measure` for its "Rust-side µs per invocation" row.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def wrk(port: int, conns: int, duration: float) -> dict:
    argv = ["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{duration:g}s", "--latency",
            f"http://127.0.0.1:{port}/noop"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", out, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return {"total": total, "rps": total / duration, "p50_ms": float(p50.group(1)) * scale}


def measure(binary: str, conns: int, duration: float, python: str | None = None) -> dict:
    """One run: a fresh server with `conns` noop workers, warmed, then wrk for `duration` s."""
    project = Path(tempfile.mkdtemp(prefix="smyth-hotpath-"))
    port = free_port()
    shutil.copy(HERE / "handlers" / "noop.py", project / "noop.py")
    (project / "smyth.toml").write_text(
        f'host = "127.0.0.1"\nport = {port}\nreload = false\n'
        + (f'python = "{python}"\n' if python else "")
        + f'[handlers.noop]\nhandler_path = "noop.handler"\nurl_path = "/noop"\nconcurrency = {conns}\n'
        + f"provisioned_concurrency = {conns}\n"
    )
    server = subprocess.Popen([binary, "run"], cwd=project, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/noop", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{binary} did not serve")
                time.sleep(0.05)
        wrk(port, conns, 1.0)  # warm both workers and the connections
        before = cpu_seconds(server.pid)
        result = wrk(port, conns, duration)
        used = cpu_seconds(server.pid) - before
        result["rust_us"] = used * 1e6 / max(result["total"], 1)
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.rmtree(project, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--conns", default="1,2")
    ap.add_argument("--python")
    args = ap.parse_args()
    runs: dict[tuple[str, int], list[dict]] = {}
    for rnd in range(args.rounds):
        for conns in [int(c) for c in args.conns.split(",")]:
            for binary in args.binaries:
                r = measure(binary, conns, args.duration, args.python)
                runs.setdefault((binary, conns), []).append(r)
                print(f"round {rnd} c{conns} {binary}: {r['rps']:.0f} req/s  p50 {r['p50_ms']:.3f} ms  "
                      f"rust {r['rust_us']:.1f} µs/req", flush=True)
    for (binary, conns), rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "rust_us")}
        print(f"MEDIAN c{conns} {binary}: {med['rps']:.0f} req/s  p50 {med['p50_ms']:.3f} ms  "
              f"rust {med['rust_us']:.1f} µs/req")
    return 0


if __name__ == "__main__":
    sys.exit(main())
