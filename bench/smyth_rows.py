"""smyth-only rows of `make bench` (issue 13): figures the peers have no counterpart for.

- Rust-side CPU µs per no-op invocation (bench.py's wrk runs, read from /proc/<server>/stat);
- cold start under `always_cold`, next to `python -c "import module"` with the same interpreter and
  environment, for the stdlib-only (noop) and the heavy-import handler, forked from the zygote and
  (`zygote = false`) spawned;
- reload latency: a handler file saved → its new code served;
- 100 handlers configured, 20 used: start-up time and total RSS;
- 40 warm workers: total RSS, and total PSS (what the forks of the zygote share counts once), with
  the zygote and without;
- the floor under the Rust-side CPU and p50 rows: bench/floor.c, a one-thread C server with blocking
  calls that makes the same two hops as smyth (client TCP, a Unix socket to a minimal Python loop,
  bench/floor_worker.py), and nothing else. Its CPU per request is what the kernel alone charges here.

Standard library only. bench.py calls `measure(binary, python, env, R)` once, with smyth's key, and
`rows(R)` for the table.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")
COLD_REPEAT = int(os.environ.get("BENCH_COLD_REPEAT", "3")) * 4
FLOOR_SECONDS = 5


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included, its children not)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_pids(root: int) -> list[int]:
    """`root` and every descendant (a fork of the zygote is the zygote's child, not the server's)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat[stat.rfind(")") + 2:].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError):
                pass
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += children.get(pid, [])
    return pids


def kb_field(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(root: int) -> int:
    """VmRSS of `root` and every descendant, in kB: a page shared by several counts in each."""
    return sum(kb_field(f"/proc/{pid}/status", "VmRSS:") for pid in tree_pids(root))


def tree_pss_kb(root: int) -> int:
    """PSS of `root` and every descendant, in kB: a page shared by n processes counts 1/n in each,
    so the sum is the memory the tree really takes."""
    return sum(kb_field(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in tree_pids(root))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
        return reply.read()


class Project:
    """A smyth server on a generated project: `handlers` are (name, module, extra toml lines)."""

    def __init__(self, binary: str, python: str, env: dict, handlers: list[tuple[str, str, str]],
                 reload: bool = False, zygote: bool = True):
        self.dir = Path(tempfile.mkdtemp(prefix="smyth-bench-rows-"))
        self.port = free_port()
        for src in HERE.glob("handlers/*.py"):
            shutil.copy(src, self.dir / src.name)
        lines = [f'host = "127.0.0.1"', f"port = {self.port}", f'python = "{python}"',
                 f"reload = {'true' if reload else 'false'}", f"zygote = {'true' if zygote else 'false'}"]
        for name, module, extra in handlers:
            lines += [f"[handlers.{name}]", f'handler_path = "{module}.handler"', f'url_path = "/{name}"', extra]
        (self.dir / "smyth.toml").write_text("\n".join(lines) + "\n")
        self.env = dict(env, PYTHONPATH=str(self.dir))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([binary, "run"], cwd=self.dir, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def wait(self, path: str, limit: float = 60) -> float:
        """Seconds from launch until `path` answers 200."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"smyth exited with {self.proc.returncode}")
            try:
                get(self.port, path, timeout=5)
                return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"{path} did not answer within {limit} s")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def bare_import_ms(python: str, env: dict, cwd: Path, module: str) -> float:
    """`python -c "import module"`: the interpreter's own floor for a cold start, median."""
    times = []
    for _ in range(COLD_REPEAT):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", f"import {module}"], cwd=cwd, env=env, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def cold_starts(binary: str, python: str, env: dict, R: dict) -> None:
    """Each handler's cold starts with the zygote (forks) and without it (spawns), interleaved."""
    handlers = [(m, m, 'strategy = "always_cold"') for m in ("noop", "heavy")]
    projects = {"": Project(binary, python, env, handlers), ".spawn": Project(binary, python, env, handlers, zygote=False)}
    try:
        for module in ("noop", "heavy"):
            times: dict[str, list[float]] = {tag: [] for tag in projects}
            for project in projects.values():
                project.wait(f"/{module}")  # a first start: the bytecode caches are written
            for _ in range(COLD_REPEAT):
                for tag, project in projects.items():
                    t0 = time.perf_counter()
                    get(project.port, f"/{module}")
                    times[tag].append((time.perf_counter() - t0) * 1000)
            for tag, samples in times.items():
                R[f"cold.{module}.smyth{tag}_ms"] = statistics.median(samples)
            R[f"cold.{module}.import_ms"] = bare_import_ms(python, projects[""].env, projects[""].dir, module)
    finally:
        for project in projects.values():
            project.stop()


def reload_latency(binary: str, python: str, env: dict, R: dict) -> None:
    """Save a new version of a handler file; time until a request gets the new code."""
    project = Project(binary, python, env, [("version", "version", "")], reload=True)
    source = project.dir / "version.py"
    try:
        times = []
        for n in range(1, 4):
            source.write_text(f"def handler(event, context):\n    return 'v{n - 1}'\n")
            time.sleep(0.3)  # the previous save's reload has settled
            project.wait("/version")
            t0 = time.perf_counter()
            source.write_text(f"def handler(event, context):\n    return 'v{n}'\n")
            deadline = t0 + 10
            while time.perf_counter() < deadline and get(project.port, "/version") != f"v{n}".encode():
                time.sleep(0.002)
            times.append((time.perf_counter() - t0) * 1000)
        R["reload_ms"] = statistics.median(times)
    finally:
        project.stop()


def many_handlers(binary: str, python: str, env: dict, R: dict) -> None:
    """100 handlers configured, 20 of them used once: start-up time and total RSS."""
    project = Project(binary, python, env, [(f"h{i}", "noop", "") for i in range(100)])
    try:
        R["hundred.startup_ms"] = project.wait("/_smyth/status") * 1000
        R["hundred.idle_kb"] = tree_rss_kb(project.proc.pid)
        for i in range(0, 100, 5):
            get(project.port, f"/h{i}")
        time.sleep(0.5)
        R["hundred.used_kb"] = tree_rss_kb(project.proc.pid)
    finally:
        project.stop()


def warm_workers(binary: str, python: str, env: dict, R: dict) -> None:
    """40 provisioned workers, all warm: total RSS and PSS of the server and its workers, forked from
    the zygote and (before it) spawned."""
    for tag, zygote in (("", True), (".spawn", False)):
        forty_warm(binary, python, env, R, tag, zygote)


def forty_warm(binary: str, python: str, env: dict, R: dict, tag: str, zygote: bool) -> None:
    handler = ("noop", "noop", "concurrency = 40\nprovisioned_concurrency = 40")
    project = Project(binary, python, env, [handler], zygote=zygote)
    try:
        project.wait("/noop")
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            status = get(project.port, "/_smyth/status").decode()
            if status.count('"state":"warm"') >= 40:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        R[f"forty{tag}.total_kb"] = tree_rss_kb(project.proc.pid)
        R[f"forty{tag}.pss_kb"] = tree_pss_kb(project.proc.pid)
    finally:
        project.stop()


def floor(binary: str, python: str, env: dict, R: dict) -> None:
    """bench/floor.c under `wrk -t1 -c1`: its CPU per request (the Python loop's not counted) and p50."""
    with tempfile.TemporaryDirectory(prefix="smyth-floor-") as tmp:
        program = Path(tmp) / "floor"
        subprocess.run(["gcc", "-O2", "-o", str(program), str(HERE / "floor.c")], check=True)
        port = free_port()
        proc = subprocess.Popen([str(program), str(port), python, str(HERE / "floor_worker.py")])
        try:
            deadline = time.perf_counter() + 10
            while True:
                try:
                    get(port, "/", timeout=2)
                    break
                except OSError:
                    if time.perf_counter() > deadline:
                        raise
                    time.sleep(0.05)
            url = f"http://127.0.0.1:{port}/"
            subprocess.run(["wrk", "-t1", "-c1", "-d1s", url], capture_output=True, check=True)
            before = cpu_seconds(proc.pid)
            out = subprocess.run(["wrk", "-t1", "-c1", f"-d{FLOOR_SECONDS}s", "--latency", url],
                                 capture_output=True, text=True, check=True).stdout
            spent = cpu_seconds(proc.pid) - before
        finally:
            for pid in tree_pids(proc.pid)[::-1]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)$", out, re.M)
    R["floor.server_us"] = spent * 1e6 / total
    R["floor.p50_ms"] = float(p50.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]


def measure(binary: str, python: str, env: dict, R: dict, log=print) -> None:
    for name, step in [("cold start vs bare import", cold_starts), ("reload latency", reload_latency),
                       ("100 handlers, 20 used", many_handlers), ("40 warm workers", warm_workers),
                       ("floor", floor)]:
        try:
            step(binary, python, env, R)
        except Exception as error:  # noqa: BLE001 - one failed row must not sink the run
            log(f"smyth {name} failed: {error}")
            R.setdefault("failures", []).append(f"{name}: {str(error)[:300]}")


def rows(R: dict) -> list[tuple[str, str, str, object]]:
    """(figure, better, kind, smyth's value) for bench.py's table; kinds as bench.py's `fmt`."""
    out = []
    for conc, conns in ((1, 1), (2, 2)):
        out.append((f"Rust-side CPU µs per no-op invocation (concurrency {conc}, {conns} conn)", "lower",
                    "ms", R.get(f"rust_us.c{conc}.n{conns}")))
    out.append(("floor: C server, the same two hops, blocking calls: CPU µs per request (1 conn)", "lower",
                "ms", R.get("floor.server_us")))
    out.append(("floor: same, p50 ms (1 conn)", "lower", "ms", R.get("floor.p50_ms")))
    for module, label in (("noop", "stdlib-only"), ("heavy", "heavy-import")):
        out.append((f"cold start under always_cold, {label} handler (ms)", "lower", "ms",
                    R.get(f"cold.{module}.smyth_ms")))
        out.append((f"cold start under always_cold, {label} handler, zygote = false: spawned (ms)", "lower", "ms",
                    R.get(f"cold.{module}.smyth.spawn_ms")))
        out.append((f"python -c \"import {module}\", same interpreter and env (ms)", "lower", "ms",
                    R.get(f"cold.{module}.import_ms")))
    out += [
        ("reload: save → new code served (ms)", "lower", "ms", R.get("reload_ms")),
        ("100 handlers configured: start-up → status answers (ms)", "lower", "ms", R.get("hundred.startup_ms")),
        ("100 handlers configured, none used: total RSS (MB)", "lower", "mb", R.get("hundred.idle_kb")),
        ("100 handlers configured, 20 used once: total RSS (MB)", "lower", "mb", R.get("hundred.used_kb")),
        ("40 warm workers: total RSS (MB)", "lower", "mb", R.get("forty.total_kb")),
        ("40 warm workers: total PSS, shared pages counted once (MB)", "lower", "mb", R.get("forty.pss_kb")),
        ("40 warm workers, zygote = false (spawned): total RSS (MB)", "lower", "mb", R.get("forty.spawn.total_kb")),
        ("40 warm workers, zygote = false (spawned): total PSS (MB)", "lower", "mb", R.get("forty.spawn.pss_kb")),
    ]
    return out


if __name__ == "__main__":
    # Standalone: python bench/smyth_rows.py BINARY PYTHON — prints the rows' figures.
    import json
    import sys

    results: dict = {}
    measure(sys.argv[1], sys.argv[2], dict(os.environ), results)
    print(json.dumps(results, indent=1))
