#!/usr/bin/env python3
"""smyth vs Smyth 0.7.1 vs serverless-offline 13.10, side by side (`make bench`).

Standard library only; run by bench/run.sh with the bench venv's python after the installs. Every
server is started by this script in its own process group, from a project generated into a temp folder
under bench/.work/ from the same handler sources (bench/handlers/*.py), on a free 127.0.0.1 port, and
is stopped (process group, then any recorded descendant) when its scenario ends or the script exits.
All traffic goes to 127.0.0.1, every loop is bounded in count and time.

Environment:
  BENCH_DURATION        seconds per wrk run (default 5)
  BENCH_CHECK_SECONDS   time cap of each correctness burst (default 4)
  BENCH_CHECK_REQUESTS  requests per connection in a correctness burst (default 200)
  BENCH_COLD_REPEAT     server launches for cold start / start-up (default 3, median reported)
  BENCH_RECOVERY_LIMIT  seconds to wait for a handler to answer again after a kill (default 15)
  BENCH_RECOVERY_REPEAT kill/recover rounds, each on a fresh server (default 3; stops at a failure)
  BENCH_ONLY            comma list of servers to run: smyth, smyth-py, sls (default all)
  BENCH_NO_RESULTS=1    print the table but do not write bench/RESULTS.md
  SMYTH_BIN             smyth binary (default target/release/smyth)
"""

from __future__ import annotations

import atexit
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import smyth_rows

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
VENV = WORK / "venv"
NODE = WORK / "node"
HANDLERS = BENCH / "handlers"
SMYTH_BIN = Path(os.environ.get("SMYTH_BIN", ROOT / "target" / "release" / "smyth"))
HOST = "127.0.0.1"

DURATION = float(os.environ.get("BENCH_DURATION", "5"))
CHECK_SECONDS = float(os.environ.get("BENCH_CHECK_SECONDS", "4"))
CHECK_REQUESTS = int(os.environ.get("BENCH_CHECK_REQUESTS", "200"))
COLD_REPEAT = int(os.environ.get("BENCH_COLD_REPEAT", "3"))
RECOVERY_LIMIT = float(os.environ.get("BENCH_RECOVERY_LIMIT", "15"))
RECOVERY_REPEAT = int(os.environ.get("BENCH_RECOVERY_REPEAT", "3"))
ONLY = [s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()]
CONNECTIONS = [1, 2, 8, 32]
CONCURRENCIES = [1, 2]
START_TIMEOUT = 30.0
HANDLER_TIMEOUT = 3  # seconds, each handler's `timeout` (smyth's and AWS's default)

SERVER_KEYS = ["smyth", "smyth-py", "sls"]
LABELS = {"smyth": "smyth", "smyth-py": "Smyth 0.7.1", "sls": "serverless-offline 13.10"}


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------------------


def proc_table() -> dict[int, int]:
    """pid -> ppid for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields and fields[0] == "Z":
            continue  # zombie: holds no memory
        try:
            table[int(entry)] = int(fields[1])
        except (IndexError, ValueError):
            continue
    return table


def descendants(root: int) -> list[int]:
    table = proc_table()
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- HTTP helpers ----------------------------------------------------------------------------------


def http_get(port: int, path: str, timeout: float = 5.0, headers: dict | None = None):
    """(status, body) or raises OSError / http.client.HTTPException."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


LENIENT = os.environ.get("BENCH_LENIENT_BODY") == "1"


def body_is(body: bytes, expected: bytes) -> bool:
    """The handler returned {"statusCode": 200, "body": expected}: the server must answer `expected`.
    With BENCH_LENIENT_BODY=1 an unmapped answer (the handler's dict as JSON) also counts, to get
    figures from a server whose API Gateway response mapping is not done yet."""
    if body == expected:
        return True
    if LENIENT:
        try:
            return json.loads(body).get("body", "").encode() == expected
        except (ValueError, AttributeError):
            return False
    return False


# --- servers ---------------------------------------------------------------------------------------

LIVE: list["Server"] = []


class Handler:
    def __init__(self, name: str, module: str, url_path: str, concurrency: int = 1):
        self.name, self.module, self.url_path, self.concurrency = name, module, url_path, concurrency


class Server:
    key = ""
    ready_path = "/__bench_not_a_route"

    def __init__(self, handlers: list[Handler]):
        self.handlers = handlers
        self.proc: subprocess.Popen | None = None
        self.dir: Path | None = None
        self.port = 0
        self.started_at = 0.0
        self.seen: set[int] = set()
        self.log_path: Path | None = None

    # project + command, per peer
    def write_project(self, d: Path) -> None:
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def is_worker(self, pid: int) -> bool:
        raise NotImplementedError

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(VENV)
        env["PYTHONPATH"] = str(self.dir)
        env.pop("PYTHONHOME", None)
        return env

    def copy_handlers(self, d: Path) -> None:
        for src in sorted(HANDLERS.glob("*.py")):
            shutil.copy(src, d / src.name)
        # Same bytecode cache state for every peer: compiled once, before the server starts.
        subprocess.run([str(VENV / "bin" / "python"), "-m", "compileall", "-q", str(d)], check=False)

    def start(self) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"proj-{self.key}-", dir=WORK))
        self.port = free_port()
        self.copy_handlers(self.dir)
        self.write_project(self.dir)
        argv, env = self.command()
        # Outside the project: smyth watches its folder, and a log inside it would wake the watcher
        # on every line the server writes.
        (WORK / "logs").mkdir(exist_ok=True)
        self.log_path = WORK / "logs" / f"{self.dir.name}.log"
        logf = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            cwd=self.dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logf.close()
        LIVE.append(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, path: str | None = None, expect: bytes | None = None, timeout: float = START_TIMEOUT) -> float:
        """Poll until `path` answers (200 + `expect` when given; any HTTP answer when not).
        Returns seconds since launch. Raises RuntimeError when the server exits or times out."""
        path = path or self.ready_path
        deadline = time.perf_counter() + timeout
        last = "no answer"
        while time.perf_counter() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.key} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                status, body = http_get(self.port, path, timeout=max(0.5, HANDLER_TIMEOUT + 2))
                if expect is None or (status == 200 and body_is(body, expect)):
                    return time.perf_counter() - self.started_at
                last = f"{status} {body[:120]!r}"
            except (OSError, http.client.HTTPException) as error:
                last = type(error).__name__
            self.remember()
            time.sleep(0.005)
        raise RuntimeError(
            f"{self.key}: GET {path} did not answer 200 {expect!r} within {timeout:.0f} s "
            f"(last answer: {last})"
        )

    def log_tail(self, n: int = 600) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip()
        except (OSError, AttributeError):
            return ""

    def remember(self) -> list[int]:
        if not self.alive():
            return []
        pids = descendants(self.proc.pid)
        self.seen.update(pids)
        return pids

    def worker_units(self) -> list[list[int]]:
        """Each worker as the list of its processes (a wrapper shell and its python count as one)."""
        pids = self.remember()
        table = proc_table()
        workers = [p for p in pids if self.is_worker(p)]
        wset = set(workers)
        tops = [p for p in workers if table.get(p) not in wset]
        units = []
        for top in tops:
            unit = [top] + [d for d in descendants(top) if d in wset]
            units.append(unit)
        return units

    def memory(self) -> dict:
        pids = self.remember()
        units = self.worker_units()
        in_workers = {p for u in units for p in u}
        server = [self.proc.pid] + [p for p in pids if p not in in_workers]
        return {
            "server_kb": sum(rss_kb(p) for p in server),
            "server_procs": len(server),
            "workers_kb": [sum(rss_kb(p) for p in u) for u in units],
            "total_kb": sum(rss_kb(p) for p in server) + sum(rss_kb(p) for u in units for p in u),
        }

    def settle(self, limit: float = 15.0) -> None:
        """Wait until the tree's total RSS is steady (within 1% over 1 s), at most `limit` s."""
        deadline = time.perf_counter() + limit
        last = -1
        time.sleep(0.5)
        while time.perf_counter() < deadline:
            total = self.memory()["total_kb"]
            if last > 0 and abs(total - last) <= 0.01 * last:
                return
            last = total
            time.sleep(1.0)

    def signal_group(self, sig: int) -> None:
        """Signals the server's process group (gone is fine), then waits up to 5 s for the server."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        if self.proc is None:
            return
        self.remember()
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
        self.signal_group(signal.SIGKILL)
        # Workers in their own process groups (smyth) or reparented: only pids we saw under our server.
        live = proc_table()
        for pid in self.seen:
            if pid in live:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.proc = None
        if self in LIVE:
            LIVE.remove(self)
        if self.dir and not os.environ.get("BENCH_KEEP_PROJECTS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def smyth_toml(handlers: list[Handler], port: int) -> str:
    lines = ["[tool.smyth]", f'host = "{HOST}"', f"port = {port}", ""]
    for h in handlers:
        lines += [
            f"[tool.smyth.handlers.{h.name}]",
            f'handler_path = "{h.module}.handler"',
            f'url_path = "{h.url_path}"',
            f"concurrency = {h.concurrency}",
            f"timeout = {HANDLER_TIMEOUT}",
            'log_level = "INFO"',
            *getattr(h, "extra", []),
            "",
        ]
    return "\n".join(lines)


class SmythRs(Server):
    key = "smyth"
    ready_path = "/_smyth/status"

    def write_project(self, d: Path) -> None:
        (d / "pyproject.toml").write_text(smyth_toml(self.handlers, self.port))

    def command(self):
        return [str(SMYTH_BIN), "run"], self.base_env()

    def is_worker(self, pid: int) -> bool:
        return pid in self.status_worker_pids()

    def worker_units(self) -> list[list[int]]:
        """Each worker smyth's status lists (asked once), with what runs under it."""
        pids = set(self.remember())
        return [[pid] + descendants(pid) for pid in sorted(self.status_worker_pids()) if pid in pids]

    def status_worker_pids(self) -> set[int]:
        """The workers' pids as smyth's status lists them: under the server are also its containment
        watchdog (a fork of smyth) and the zygote, which are not workers."""
        try:
            status, body = http_get(self.port, "/_smyth/status")
            handlers = json.loads(body)["handlers"].values() if status == 200 else []
        except (OSError, ValueError, http.client.HTTPException):
            handlers = []
        return {w["pid"] for h in handlers for w in h["workers"] if w.get("pid")}

    def memory(self) -> dict:
        """As every server's, with the zygote (a pre-started interpreter the workers fork from, shared
        by all handlers) taken out of the server's figures into its own."""
        mem = super().memory()
        units = {p for u in self.worker_units() for p in u}
        zygote = [p for p in self.remember() if p not in units and "smyth_runtime.py" in cmdline(p)]
        mem["zygote_kb"] = sum(rss_kb(p) for p in zygote)
        mem["server_kb"] -= mem["zygote_kb"]
        mem["server_procs"] -= len(zygote)
        return mem


class SmythPy(Server):
    key = "smyth-py"
    ready_path = "/smyth/api/status"

    def write_project(self, d: Path) -> None:
        (d / "pyproject.toml").write_text(smyth_toml(self.handlers, self.port))

    def command(self):
        # Smyth 0.7.1 ships no console script; `python -m smyth` is its CLI (a single typer command).
        return [str(VENV / "bin" / "python"), "-m", "smyth"], self.base_env()

    def is_worker(self, pid: int) -> bool:
        # The uvicorn reloader (root) has two children, multiprocessing's resource tracker and the
        # server process; the workers are the server's children (they retitle themselves
        # "smyth:NAME:i" only seconds after spawn, so the tree, not the title, tells them).
        return proc_table().get(pid) not in (self.proc.pid, None)


class Sls(Server):
    key = "sls"

    def write_project(self, d: Path) -> None:
        out = [
            "service: bench",
            "frameworkVersion: '3'",
            "provider:",
            "  name: aws",
            "  runtime: python3.11",
            "  region: us-east-1",
            "  stage: dev",
            f"  timeout: {HANDLER_TIMEOUT}",
            "plugins:",
            "  - serverless-offline",
            "functions:",
        ]
        for h in self.handlers:
            # serverless-offline has no per-function worker limit: its pool grows on demand.
            out += [
                f"  {h.name}:",
                f"    handler: {h.module}.handler",
                "    events:",
                "      - httpApi:",
                f"          path: {h.url_path}",
                "          method: GET",
            ]
        (d / "serverless.yml").write_text("\n".join(out) + "\n")
        (d / "node_modules").symlink_to(NODE / "node_modules")

    def command(self):
        env = self.base_env()
        env.update(
            SLS_TELEMETRY_DISABLED="1",
            SLS_TRACKING_DISABLED="1",
            SLS_NOTIFICATIONS_MODE="off",
            SLS_DISABLE_AUTO_UPDATE="1",
            SLS_DEPRECATION_DISABLE="*",
            AWS_ACCESS_KEY_ID="AKIDBENCHDUMMY",
            AWS_SECRET_ACCESS_KEY="dummy",
            AWS_REGION="us-east-1",
        )
        self.lambda_port = free_port()
        argv = [
            str(NODE / "node_modules" / ".bin" / "serverless"),
            "offline",
            "--host", HOST,
            "--httpPort", str(self.port),
            "--lambdaPort", str(self.lambda_port),
            "--noSponsor",
        ]
        return argv, env

    def is_worker(self, pid: int) -> bool:
        return "invoke.py" in cmdline(pid)


PEERS = {"smyth": SmythRs, "smyth-py": SmythPy, "sls": Sls}


def cleanup_all(*_args) -> None:
    for server in list(LIVE):
        try:
            server.stop()
        except Exception as error:  # noqa: BLE001 - cleanup must go on
            log(f"cleanup of {server.key} failed: {error}")


def on_signal(signum, _frame):
    cleanup_all()
    sys.exit(128 + signum)


# --- measurements ----------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def run_wrk(port: int, path: str, conns: int, duration: float) -> dict:
    threads = min(conns, 2)
    argv = [
        "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration:g}s", "--latency", "--timeout", "5s",
        f"http://{HOST}:{port}{path}",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    res = {"cmd": " ".join(argv)}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    total = int(m.group(1)) if m else 0
    secs = parse_ms(m.group(2) + m.group(3)) / 1000 if m else duration
    non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs = sum(int(x) for x in m.groups())
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}"] = parse_ms(m.group(1)) if m else None
    res.update(total=total, seconds=secs, non2xx=non2xx, socket_errors=errs)
    res["rps_2xx"] = (total - non2xx) / secs if secs else 0.0
    return res


def correctness(port: int, conns: int) -> dict:
    """`conns` keep-alive connections, each sending up to CHECK_REQUESTS echo requests with a unique id
    (query + header) for at most CHECK_SECONDS; every 2xx body must be its own request's id."""
    lock = threading.Lock()
    counts = {"sent": 0, "ok": 0, "mismatch": 0, "non2xx": 0, "errors": 0, "statuses": {}}
    barrier = threading.Barrier(conns)
    deadline = [0.0]
    run = uuid.uuid4().hex[:8]

    def worker(i: int) -> None:
        local = {"sent": 0, "ok": 0, "mismatch": 0, "non2xx": 0, "errors": 0}
        statuses: dict[int, int] = {}
        conn = http.client.HTTPConnection(HOST, port, timeout=HANDLER_TIMEOUT + 3)
        barrier.wait()
        for n in range(CHECK_REQUESTS):
            if time.perf_counter() > deadline[0]:
                break
            rid = f"{run}-{i}-{n}"
            local["sent"] += 1
            try:
                conn.request("GET", f"/echo?id={rid}", headers={"x-req-id": rid})
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                local["errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=HANDLER_TIMEOUT + 3)
                continue
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if 200 <= resp.status < 300:
                if body_is(body, rid.encode()):
                    local["ok"] += 1
                else:
                    local["mismatch"] += 1
            else:
                local["non2xx"] += 1
        conn.close()
        with lock:
            for k, v in local.items():
                counts[k] += v
            for k, v in statuses.items():
                counts["statuses"][k] = counts["statuses"].get(k, 0) + v

    deadline[0] = time.perf_counter() + CHECK_SECONDS + 1
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CHECK_SECONDS + 2 * (HANDLER_TIMEOUT + 3) + 5)
    # Still answering after the burst?
    after = None
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 5:
        try:
            status, body = http_get(port, "/echo?id=after", timeout=HANDLER_TIMEOUT + 2)
            if status == 200 and body_is(body, b"after"):
                after = True
                break
            after = False
        except (OSError, http.client.HTTPException):
            after = False
        time.sleep(0.1)
    counts["answers_after"] = bool(after)
    return counts


def load_cell(key: str, conc: int, conns: int, part: str, R: dict) -> None:
    """One cell on a fresh server (so one run's wreckage does not spill into the next): `wrk` =
    throughput/latency of noop with wrk; `check` = a correctness burst on echo."""
    handlers = [Handler("noop", "noop", "/noop", conc), Handler("echo", "echo", "/echo", conc)]
    server = PEERS[key](handlers)
    server.start()
    try:
        if part == "wrk":
            load_wrk(key, server, conc, conns, R)
        else:
            server.wait_ready("/echo?id=ready", b"ready")
            res = correctness(server.port, conns)
            R[f"check.c{conc}.n{conns}"] = res
            log(f"{key} concurrency={conc} check conns={conns}: {res}")
    finally:
        server.stop()


def load_wrk(key: str, server: Server, conc: int, conns: int, R: dict) -> None:
    server.wait_ready("/noop", b"ok")
    if conc == 1 and conns == CONNECTIONS[0]:
        time.sleep(0.5)
        mem = server.memory()
        R["mem.server_kb"] = mem["server_kb"]
        R["mem.server_procs"] = mem["server_procs"]
        R["mem.worker_kb"] = statistics.mean(mem["workers_kb"]) if mem["workers_kb"] else None
        R["mem.zygote_kb"] = mem.get("zygote_kb")
    run_wrk(server.port, "/noop", conc, 1)  # warm the pool, within its size
    cpu_before = rust_cpu(key, server)
    res = run_wrk(server.port, "/noop", conns, DURATION)
    R[f"wrk.c{conc}.n{conns}"] = res
    note_rust_cpu(key, server, cpu_before, res, f"rust_us.c{conc}.n{conns}", R)
    log(f"{key} concurrency={conc} conns={conns}: {res['rps_2xx']:.0f} 2xx req/s, "
        f"p50 {res['p50']} ms, non-2xx {res['non2xx']}, socket errors {res['socket_errors']}")
    if conc == 1 and conns == CONNECTIONS[-1]:
        R["mem.server_kb_after_load"] = server.memory()["server_kb"]


def rust_cpu(key: str, server: Server) -> float | None:
    """smyth's own CPU seconds so far (its workers are other processes); None for the peers."""
    return smyth_rows.cpu_seconds(server.proc.pid) if key == "smyth" else None


def note_rust_cpu(key: str, server: Server, before: float | None, res: dict, name: str, R: dict) -> None:
    """Rust-side CPU µs per request of the wrk run `res`, from the CPU read before it."""
    if before is not None and res.get("total"):
        R[name] = (smyth_rows.cpu_seconds(server.proc.pid) - before) * 1e6 / res["total"]


def scenario_smyth_rows(key: str, R: dict) -> None:
    """smyth-only rows (bench/smyth_rows.py): cold start vs bare import, reload, scale, memory."""
    if key == "smyth":
        env = SmythRs([]).base_env()
        smyth_rows.measure(str(SMYTH_BIN), str(VENV / "bin" / "python"), env, R, log)


def scenario_cold(key: str, R: dict) -> None:
    starts, colds, warms = [], [], []
    for _ in range(COLD_REPEAT):
        server = PEERS[key]([Handler("noop", "noop", "/noop"), Handler("heavy", "heavy", "/heavy")])
        server.start()
        try:
            starts.append(server.wait_ready("/noop", b"ok"))
            t0 = time.perf_counter()
            status, _ = http_get(server.port, "/heavy", timeout=30)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            status2, _ = http_get(server.port, "/heavy", timeout=30)
            warm = time.perf_counter() - t0
            if status == 200 and status2 == 200:
                colds.append(cold)
                warms.append(warm)
        finally:
            server.stop()
    R["startup_s"] = statistics.median(starts) if starts else None
    R["cold_s"] = statistics.median(colds) if colds else None
    R["heavy_warm_s"] = statistics.median(warms) if warms else None
    log(f"{key} start-up {starts}, heavy cold {colds}, heavy warm {warms}")


def scenario_snapstart(key: str, R: dict) -> None:
    """SnapStart (smyth only): every request to an always_cold heavy-import handler is a fresh
    environment forked from the template, which imported the module once (the first request)."""
    if key != "smyth":
        return
    heavy = Handler("heavy", "heavy", "/heavy")
    heavy.extra = ["snap_start = true", 'strategy = "always_cold"']
    server = PEERS[key]([Handler("noop", "noop", "/noop"), heavy])
    server.start()
    try:
        server.wait_ready("/noop", b"ok")
        http_get(server.port, "/heavy", timeout=30)  # the template's init
        colds = []
        for _ in range(COLD_REPEAT * 4):
            t0 = time.perf_counter()
            status, _ = http_get(server.port, "/heavy", timeout=30)
            if status == 200:
                colds.append(time.perf_counter() - t0)
    finally:
        server.stop()
    R["snap_cold_s"] = statistics.median(colds) if colds else None
    log(f"{key} SnapStart restored cold starts {colds}")


def scenario_ten(key: str, R: dict) -> None:
    handlers = [Handler(f"h{i}", "noop", f"/h{i}") for i in range(10)]
    server = PEERS[key](handlers)
    server.start()
    try:
        server.wait_ready()  # any HTTP answer: listening, no handler invoked
        server.settle()  # let eagerly started workers finish starting
        mem = server.memory()
        R["ten.idle_kb"] = mem["total_kb"]
        R["ten.idle_workers"] = len(mem["workers_kb"])
        for h in handlers:
            http_get(server.port, h.url_path, timeout=30)
        time.sleep(0.5)
        mem = server.memory()
        R["ten.used_kb"] = mem["total_kb"]
        R["ten.used_workers"] = len(mem["workers_kb"])
        log(f"{key} ten handlers: idle {R['ten.idle_kb']} kB ({R['ten.idle_workers']} workers), "
            f"all used {R['ten.used_kb']} kB ({R['ten.used_workers']} workers)")
    finally:
        server.stop()


def scenario_record(key: str, R: dict, rounds: int = 12) -> None:
    """smyth only: no-op throughput (concurrency 1, 1 conn) with `record = true` (the default) and
    `record = false`: both servers up at once, warmed, then `rounds` pairs of short wrk runs, one on
    each, back to back; the ratio is the median of the pairs' ratios. Recording may cost at most 5 %. Also the
    recorder thread's own CPU per recorded invocation (from /proc/<pid>/task/<tid>/stat)."""
    if key != "smyth":
        return

    class Unrecorded(SmythRs):
        def write_project(self, d: Path) -> None:
            (d / "pyproject.toml").write_text(smyth_toml(self.handlers, self.port).replace(
                "[tool.smyth]\n", "[tool.smyth]\nrecord = false\n", 1))

    servers = {"on": SmythRs([Handler("noop", "noop", "/noop")]),
               "off": Unrecorded([Handler("noop", "noop", "/noop")])}
    rps: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for server in servers.values():
            server.start()
            server.wait_ready("/noop", b"ok")
            run_wrk(server.port, "/noop", 1, 1)  # warm
        recorder_before, recorded = recorder_cpu_seconds(servers["on"].proc.pid), 0
        for round_ in range(rounds):
            # Each pair in turn order (on first, then off first), so that a drift within a pair,
            # or going second, falls on both alike.
            order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
            for mode in order:
                res = run_wrk(servers[mode].port, "/noop", 1, max(int(DURATION * 0.4), 1))  # whole seconds: wrk
                rps[mode].append(res["rps_2xx"])
                recorded += res["total"] if mode == "on" else 0
        used = recorder_cpu_seconds(servers["on"].proc.pid) - recorder_before
        R["record.writer_us"] = used * 1e6 / recorded if recorded else None
    finally:
        for server in servers.values():
            server.stop()
    R["record.on_rps"], R["record.off_rps"] = (statistics.median(rps[m]) for m in ("on", "off"))
    # The median of the pairs' ratios: each pair ran back to back, so the shared machine's swings
    # between pairs (±10 %) cancel out, which a ratio of the two medians does not do.
    pairs = [on / off for on, off in zip(rps["on"], rps["off"]) if off]
    R["record.ratio"] = statistics.median(pairs) if pairs else None
    log(f"{key} no-op req/s recording on {[round(r) for r in rps['on']]}, "
        f"off {[round(r) for r in rps['off']]}; writer {R['record.writer_us']} µs per invocation")


def recorder_cpu_seconds(pid: int) -> float:
    """utime + stime of the server's `recorder` thread (0 if it has none)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == "recorder":
            stat = (task / "stat").read_text()
            fields = stat[stat.rfind(")") + 2:].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def describe_body(body: bytes) -> str:
    """A short description of an answer: the Lambda error type and message when it is one."""
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and "errorType" in doc:
            return f"{doc['errorType']}: {str(doc.get('errorMessage', ''))[:90]}"
    except ValueError:
        pass
    return body[:60].decode("utf-8", "replace")


def scenario_recovery(key: str, R: dict) -> None:
    """Kill the idle worker's Python process, then GET the handler until it answers 200 again.
    Repeated RECOVERY_REPEAT times on fresh servers (stops early when a server never recovers)."""
    runs = []
    for _ in range(RECOVERY_REPEAT):
        run = recovery_once(key)
        runs.append(run)
        log(f"{key} recovery: {run}")
        if run.get("seconds") is None:
            break
    times = [r["seconds"] for r in runs if r.get("seconds") is not None]
    firsts = [r.get("first") or r.get("error", "?") for r in runs]
    failed_first = [f for f in firsts if not f.startswith("200 ")]
    R["recovery"] = {
        "seconds": statistics.median(times) if len(times) == len(runs) else None,
        "runs": len(runs),
        "first": failed_first[0] if failed_first else firsts[0],
        "first_failed": f"{len(failed_first)}/{len(runs)}",
        "attempts": runs[-1].get("attempts"),
    }


def recovery_once(key: str) -> dict:
    server = PEERS[key]([Handler("noop", "noop", "/noop")])
    server.start()
    try:
        server.wait_ready("/noop", b"ok")
        time.sleep(0.3)
        units = server.worker_units()
        if not units:
            return {"error": "no worker process found"}
        # Kill the Python process of each worker (for serverless-offline, the python under its
        # `/bin/sh -c` wrapper; killing the wrapper too crashes serverless-offline with an uncaught EPIPE).
        table = proc_table()
        for unit in units:
            parents = {table.get(p) for p in unit}
            for pid in unit:
                if pid in parents:
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        t0 = time.perf_counter()
        first, attempts, recovered = None, 0, None
        while time.perf_counter() - t0 < RECOVERY_LIMIT:
            attempts += 1
            try:
                status, body = http_get(server.port, "/noop", timeout=HANDLER_TIMEOUT + 3)
            except (OSError, http.client.HTTPException) as error:
                status, body = type(error).__name__, b""
            if first is None:
                first = f"{status} {describe_body(body)}".strip()
            if status == 200 and body_is(body, b"ok"):
                recovered = time.perf_counter() - t0
                break
            time.sleep(0.01)
        return {"seconds": recovered, "first": first, "attempts": attempts, "killed": len(units)}
    finally:
        server.stop()


def smyth_available() -> tuple[bool, str]:
    if not SMYTH_BIN.exists():
        return False, f"{SMYTH_BIN} not built"
    server = SmythRs([Handler("noop", "noop", "/noop")])
    server.start()
    try:
        server.wait_ready("/noop", b"ok", timeout=15)
        return True, ""
    except RuntimeError as error:
        return False, str(error).splitlines()[0][:200]
    finally:
        server.stop()


def steps() -> list[tuple[str, object]]:
    """Every measurement, in order; each runs for all servers back to back (interleaved), so that the
    drift of a shared machine hits the three columns of a row alike."""
    out: list[tuple[str, object]] = [("cold start / start-up", scenario_cold), ("SnapStart", scenario_snapstart)]
    for conc in CONCURRENCIES:
        for conns in CONNECTIONS:
            for part in ("wrk", "check"):
                out.append((f"{part}, concurrency {conc}, {conns} conn",
                            lambda key, R, c=conc, n=conns, p=part: load_cell(key, c, n, p, R)))
    out += [("10 handlers", scenario_ten), ("recovery", scenario_recovery)]
    out.append(("recording on vs off", scenario_record))
    out.append(("smyth only: issue 13 rows", scenario_smyth_rows))
    return out


def measure_all(keys: list[str]) -> dict:
    results: dict = {key: {} for key in keys}
    for name, fn in steps():
        for key in keys:
            log(f"== {LABELS[key]}: {name}")
            try:
                fn(key, results[key])
            except Exception as error:  # noqa: BLE001 - one failed step must not sink the run
                log(f"{key} {name} failed: {error}")
                results[key].setdefault("failures", []).append(f"{name}: {str(error)[:300]}")
    return results


# --- report ----------------------------------------------------------------------------------------


def fmt(v, kind: str) -> str:
    if v is None:
        return "n/a"
    if kind == "rps":
        return f"{v:,.0f}"
    if kind == "ms":
        return f"{v:.2f}" if v < 10 else f"{v:,.0f}"
    if kind == "s":
        return f"{v * 1000:,.0f} ms" if v < 10 else f"{v:.1f} s"
    if kind == "mb":
        return f"{v / 1024:.1f}"
    if kind == "int":
        return str(v)
    return str(v)


def ratio(a, b) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "n/a"
    r = a / b
    if r < 0.1:
        return f"{r:.2g}×"
    return f"{r:.2f}×" if r < 10 else f"{r:,.0f}×"


def rows(results: dict) -> list[tuple]:
    """(figure, better, kind, {key: value or str})"""
    out = []

    def get(key, path):
        r = results.get(key) or {}
        cur = r
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return None
            cur = cur[p]
        return cur

    def add(figure, better, kind, path, transform=None):
        vals = {}
        for key in SERVER_KEYS:
            v = get(key, path)
            vals[key] = transform(v) if (transform and v is not None) else v
        out.append((figure, better, kind, vals))

    for conc in CONCURRENCIES:
        for conns in CONNECTIONS:
            base = [f"wrk.c{conc}.n{conns}"]
            tag = f"concurrency {conc}, {conns} conn"
            add(f"no-op 2xx req/s ({tag})", "higher", "rps", base + ["rps_2xx"])
            add(f"no-op p50 ms ({tag})", "lower", "ms", base + ["p50"])
            add(f"no-op p90 ms ({tag})", "lower", "ms", base + ["p90"])
            add(f"no-op p99 ms ({tag})", "lower", "ms", base + ["p99"])
            add(f"no-op non-2xx + socket errors ({tag})", "lower", "int", base,
                lambda r: r["non2xx"] + r["socket_errors"])
    for conc in CONCURRENCIES:
        for conns in CONNECTIONS:
            base = [f"check.c{conc}.n{conns}"]
            tag = f"concurrency {conc}, {conns} conn"
            add(f"echo: mismatched responses / sent ({tag})", "lower", "str", base,
                lambda r: f"{r['mismatch']}/{r['sent']}")
            add(f"echo: non-2xx + errors / sent ({tag})", "lower", "str", base,
                lambda r: f"{r['non2xx'] + r['errors']}/{r['sent']}")
            add(f"echo: answers after the burst ({tag})", "yes", "str", base + ["answers_after"],
                lambda v: "yes" if v else "no")
    add("cold start, heavy-import handler (ms)", "lower", "ms", ["cold_s"], lambda v: v * 1000)
    add("same handler warm (ms)", "lower", "ms", ["heavy_warm_s"], lambda v: v * 1000)
    add("SnapStart cold start, same handler restored by fork (ms)", "lower", "ms", ["snap_cold_s"],
        lambda v: v * 1000)
    add("start-up: launch → first 200 (ms)", "lower", "ms", ["startup_s"], lambda v: v * 1000)
    add("server RSS, idle (MB)", "lower", "mb", ["mem.server_kb"])
    add("server RSS after the 32-connection run (MB)", "lower", "mb", ["mem.server_kb_after_load"])
    add("server processes (non-worker)", "lower", "int", ["mem.server_procs"])
    add("idle warm worker RSS (MB)", "lower", "mb", ["mem.worker_kb"])
    add("zygote RSS, shared by every handler's cold starts (MB)", "lower", "mb", ["mem.zygote_kb"])
    add("10 handlers, none invoked: total RSS (MB)", "lower", "mb", ["ten.idle_kb"])
    add("10 handlers, none invoked: worker processes", "lower", "int", ["ten.idle_workers"])
    add("10 handlers, each invoked once: total RSS (MB)", "lower", "mb", ["ten.used_kb"])
    add("10 handlers, each invoked once: worker processes", "lower", "int", ["ten.used_workers"])
    add("no-op 2xx req/s, recording on (concurrency 1, 1 conn)", "higher", "rps", ["record.on_rps"])
    add("no-op 2xx req/s, recording off (concurrency 1, 1 conn)", "higher", "rps", ["record.off_rps"])
    add("recording on / off (no-op req/s, median of 12 back-to-back pairs; at least 0.95)", "higher", "str", ["record.ratio"],
        lambda v: f"{v:.3f}")
    add("recorder thread CPU per recorded invocation (µs)", "lower", "str", ["record.writer_us"],
        lambda v: f"{v:.1f}")
    add("recovery after SIGKILL of the worker (ms)", "lower", "ms", ["recovery", "seconds"], lambda v: v * 1000)
    add("recovery: first request after the kill failed (rounds)", "lower", "str", ["recovery", "first_failed"])
    add("first answer after the kill (a failed one, if any)", "", "str", ["recovery", "first"])
    for figure, better, kind, value in smyth_rows.rows(results.get("smyth") or {}):
        out.append((figure, better, kind, {"smyth": value, "smyth-py": None, "sls": None}))
    return out


def render(results: dict) -> str:
    head = ["figure", "smyth", "Smyth 0.7.1", "serverless-offline", "smyth/Smyth", "smyth/sls", "better"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for figure, better, kind, vals in rows(results):
        cells = []
        for key in SERVER_KEYS:
            v = vals[key]
            if kind == "str":
                cells.append("n/a" if v is None else str(v).replace("|", "/"))
            elif kind == "int":
                cells.append("n/a" if v is None else str(v))
            else:
                cells.append(fmt(v, kind))
        if kind in ("rps", "ms", "mb", "int"):
            r1, r2 = ratio(vals["smyth"], vals["smyth-py"]), ratio(vals["smyth"], vals["sls"])
        else:
            r1 = r2 = ""
        lines.append("| " + " | ".join([figure] + cells + [r1, r2, better]) + " |")
    return "\n".join(lines)


def recovery_note(results: dict, key: str) -> str:
    r = (results.get(key) or {}).get("recovery")
    if not r:
        return "not measured"
    if r.get("seconds") is None:
        return f"no 200 within {RECOVERY_LIMIT:g} s ({r.get('attempts')} attempts; first answer: {r.get('first')})"
    return (f"answered again after {r['seconds'] * 1000:.0f} ms (median of {r.get('runs')} rounds); the first "
            f"request after the kill failed in {r.get('first_failed')} rounds (first answer: {r.get('first')})")


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu, "kernel": platform.release()}


def versions() -> dict:
    def run(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            return "n/a"

    def pkg(name):
        try:
            return json.loads((NODE / "node_modules" / name / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            return "n/a"

    rev = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    smyth = "n/a"
    if SMYTH_BIN.exists():
        built = datetime.datetime.fromtimestamp(SMYTH_BIN.stat().st_mtime, datetime.timezone.utc)
        smyth = f"{run([str(SMYTH_BIN), '--version'])} ({SMYTH_BIN}, built {built:%Y-%m-%d %H:%M} UTC; repo at {rev})"
    wrk = run(["wrk", "--version"]) if shutil.which("wrk") else "n/a"
    m = re.search(r"wrk \S+", wrk)
    return {
        "smyth": smyth,
        "Smyth": run([str(VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('smyth'))"]),
        "serverless": pkg("serverless"),
        "serverless-offline": pkg("serverless-offline"),
        "python": run([str(VENV / "bin" / "python"), "--version"]),
        "node": run(["node", "--version"]),
        "wrk": m.group(0) if m else wrk,
    }


def report(results: dict, notes: dict, started: datetime.datetime, elapsed: float, m: dict, v: dict) -> str:
    table = render(results)
    failures = []
    for key in SERVER_KEYS:
        for f in (results.get(key) or {}).get("failures", []):
            failures.append(f"- {LABELS[key]}: {f}")
    wrk_cmd = f"wrk -t<min(conns,2)> -c<conns> -d{DURATION:g}s --latency --timeout 5s http://127.0.0.1:PORT/noop"
    return f"""# smyth benchmark: smyth vs Smyth 0.7.1 vs serverless-offline 13.10

Generated by `make bench` (`bench/run.sh` → `bench/bench.py`) on {started.strftime('%Y-%m-%d %H:%M UTC')},
in {elapsed / 60:.1f} min. Absolute numbers on this shared machine drift; the ratios are the figures to
read: same handlers, same client, loopback only, and every measurement runs for the three servers back
to back (interleaved), each on a fresh server.

**Machine:** {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}.
**Versions:** {v['smyth']}; Smyth {v['Smyth']}; serverless {v['serverless']} + serverless-offline
{v['serverless-offline']}; {v['python']} (one venv, bench/.work/venv, serves all three); node {v['node']}; {v['wrk']}.

## Results

`smyth/Smyth` and `smyth/sls` are smyth's figure divided by the peer's: above 1 is better for
"higher" rows, below 1 is better for "lower" rows. "n/a": not measured (server not available or the
scenario failed — see the notes).

{table}

## Notes

- smyth: {notes.get('smyth', 'measured')}.{''.join(chr(10) + '- ' + t for k, t in notes.items() if k != 'smyth')}
- Recovery after SIGKILL of the worker, smyth: {recovery_note(results, 'smyth')}.
- Recovery, Smyth 0.7.1: {recovery_note(results, 'smyth-py')}.
- Recovery, serverless-offline: {recovery_note(results, 'sls')}.
- Killing serverless-offline's Python process: the next request either waits for the function timeout
  and gets a 200 whose body is a `[504] - Lambda timeout` error (and so does every later request), or
  node dies with an uncaught `write EPIPE` (a race with its `/bin/sh -c` wrapper exiting) and drops
  every connection; either way the handler never answers again. Smyth 0.7.1 answers
  `500 Process is not alive` until it is restarted.
- Throughput counts only 2xx answers: Smyth answers 500 when requests outnumber idle workers; those are
  counted in the "non-2xx" row and excluded from req/s, but wrk's latency percentiles include them.
- serverless-offline has no per-function worker limit (its pool spawns another Python process whenever
  all are busy), so its "concurrency 1" and "concurrency 2" runs use the same configuration.
- Smyth 0.7.1 starts every handler's worker processes at start-up (spawn, with Smyth's own imports
  already loaded), so its "cold start" is only the handler's import; smyth and serverless-offline start
  a Python process on the first request.
- Server RSS counts every process that is not a worker: for Smyth the uvicorn reloader, the server
  process and multiprocessing's resource tracker; for serverless-offline the node process; for smyth
  the server process and its containment watchdog (a fork of it); smyth's zygote (the pre-started
  interpreter that cold starts fork from, one for all handlers) has a row of its own. smyth's workers
  are the pids its status lists. Worker RSS for serverless-offline includes its `/bin/sh -c` wrapper.
- Cold start = request → response of the first request to a handler whose module imports ~20 heavy
  stdlib modules (bench/handlers/heavy.py), on a server already answering; median of {COLD_REPEAT}
  launches. Start-up = process launch → first 200 from the no-op handler (includes its cold start).
{chr(10).join(failures)}

## Commands

- `make bench` (= `cargo build --release && bash bench/run.sh`); `BENCH_DURATION=10 make bench` for
  longer wrk runs, `BENCH_ONLY=smyth make bench` for one server (see bench/bench.py's docstring).
- Installs (idempotent, into bench/.work/): `apt-get install wrk` when missing;
  `python3.11 -m venv bench/.work/venv && pip install smyth==0.7.1`;
  `npm install serverless@3.40 serverless-offline@13.10` in bench/.work/node.
- smyth: `target/release/smyth run` in the project folder (pyproject.toml `[tool.smyth]`).
- Smyth: `bench/.work/venv/bin/python -m smyth` in the same kind of project folder (same pyproject.toml).
- serverless-offline: `bench/.work/node/node_modules/.bin/serverless offline --host 127.0.0.1
  --httpPort P --lambdaPort P2 --noSponsor` with serverless.yml (provider aws, python3.11, `httpApi`
  GET events, timeout {HANDLER_TIMEOUT}), SLS_TELEMETRY_DISABLED=1 SLS_TRACKING_DISABLED=1
  SLS_NOTIFICATIONS_MODE=off SLS_DISABLE_AUTO_UPDATE=1, dummy AWS keys, the venv's bin first on PATH.
- Load: `{wrk_cmd}` for conns in {CONNECTIONS}, after a 1 s warm-up.
- Correctness: bench.py's threaded client, N keep-alive connections, each up to {CHECK_REQUESTS} requests
  `GET /echo?id=<unique>` (+ `x-req-id` header) for at most {CHECK_SECONDS:g} s; a 2xx whose body is
  not its own id is a mismatch; then `GET /echo?id=after` must answer 200 `after` within 5 s.
- Handlers: `timeout = {HANDLER_TIMEOUT}`, `log_level = "INFO"`, `concurrency` as in the row.
"""


def main() -> int:
    if sys.argv[1:] == ["--render"]:
        # Re-render bench/RESULTS.md and the table from the last run's bench/.work/results.json.
        return write_report(json.loads((WORK / "results.json").read_text()))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(cleanup_all)
    if not shutil.which("wrk"):
        log("wrk not found (bench/run.sh installs it)")
        return 1
    started = datetime.datetime.now(datetime.timezone.utc)
    shutil.rmtree(WORK / "logs", ignore_errors=True)
    t0 = time.perf_counter()
    keys = [k for k in SERVER_KEYS if not ONLY or k in ONLY]
    notes: dict = {}
    if "smyth" in keys:
        ok, why = smyth_available()
        if not ok:
            log(f"smyth is not serving yet ({why}): its column is n/a")
            notes["smyth"] = f"not measured: the server did not serve ({why})"
            keys.remove("smyth")
    results = measure_all(keys)
    if LENIENT:
        notes["lenient"] = ("BENCH_LENIENT_BODY=1: an answer carrying the handler's dict as JSON (no API "
                            "Gateway response mapping) was accepted as correct.")
    elapsed = time.perf_counter() - t0
    saved = {
        "results": results, "notes": notes, "started": started.isoformat(), "elapsed": elapsed,
        "machine": machine(), "versions": versions(),
    }
    (WORK / "results.json").write_text(json.dumps(saved, indent=1, default=str))
    return write_report(saved)


def write_report(saved: dict) -> int:
    results, notes = saved["results"], saved["notes"]
    started = datetime.datetime.fromisoformat(saved["started"])
    elapsed = saved["elapsed"]
    text = report(results, notes, started, elapsed, saved["machine"], saved["versions"])
    print(render(results))
    if not os.environ.get("BENCH_NO_RESULTS"):
        (BENCH / "RESULTS.md").write_text(text)
        log(f"wrote {BENCH / 'RESULTS.md'} ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
