"""smyth's fork server: a Python process that has done some init forks ready environments on request.

It knows nothing of handlers or SnapStart: the bundled runtime's snapshot part imports the handler and
runs the before-snapshot hooks, then calls `serve`; its zygote calls it with nothing of the user's
imported.
`serve` never returns in the server; it returns in each forked child, with that child's settings
applied, and the caller goes on to be the environment.

Protocol: one SOCK_SEQPACKET socket (fd in SMYTH_FORKSERVER_FD), one JSON object per message.
  server -> smyth  {"ready": INFO}                             once, when `serve` starts
  smyth -> server  {"fork": ID, "env": {...}} + SCM_RIGHTS [fd] fd becomes the child's stdout/stderr
  server -> smyth  {"forked": ID, "pid": PID} | {"forked": ID, "error": TEXT}
  smyth -> server  {"release": PID}         smyth knows the pid: the child may go on (its first
                                            Runtime API call must find smyth knowing who it is)
  server -> smyth  {"exited": PID, "code": N} | {"exited": PID, "signal": N}
The server is each child's parent and reaps it. End of file on the socket (smyth dropped the
template, or died) ends the server; its children die with it (PR_SET_PDEATHSIG).
"""

import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20


def send(sock, message):
    sock.send(json.dumps(message).encode("utf-8"))


def serve(fd, info):
    """Serves fork requests on socket `fd`; returns only in a forked child."""
    sock = socket.socket(fileno=fd)
    libc = ctypes.CDLL(None, use_errno=True)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, None)
    # What init made is never collected in the children: their collector does not walk it (and so
    # does not copy its pages).
    gc.collect()
    gc.freeze()
    send(sock, {"ready": info})
    held = {}  # pid -> the write end of the pipe its child waits on
    while True:
        for key, _ in selector.select():
            if key.data is None:
                message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 4)
                if not message:
                    os._exit(0)  # smyth is gone or dropped this server
                request = json.loads(message)
                if "release" in request:
                    release(held, request["release"])
                elif fork(request, fds, sock, selector, libc, held) == 0:
                    return
            else:
                release(held, key.data)
                reap(key, sock, selector)


def release(held, pid):
    gate = held.pop(pid, None)
    if gate is not None:
        os.write(gate, b"x")
        os.close(gate)


def fork(request, fds, sock, selector, libc, held):
    """Forks one environment; 0 in the child (settings applied), its pid in the server."""
    if not fds:
        send(sock, {"forked": request["fork"], "error": "no output descriptor came with the request"})
        return -1
    output = fds[0]
    for extra in fds[1:]:
        os.close(extra)
    server = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # nothing buffered here may be written twice
    wait, gate = os.pipe()
    try:
        pid = os.fork()
    except OSError as error:
        for fd in (output, wait, gate):
            os.close(fd)
        send(sock, {"forked": request["fork"], "error": str(error)})
        return -1
    if pid == 0:
        for fd in [gate] + list(held.values()):
            os.close(fd)
        become_environment(request, output, server, sock, selector, libc)
        if os.read(wait, 1) != b"x":  # released by smyth; end of file: the server is gone
            os._exit(1)
        os.close(wait)
        return 0
    os.close(output)
    os.close(wait)
    held[pid] = gate
    pidfd = os.pidfd_open(pid)
    selector.register(pidfd, selectors.EVENT_READ, pid)
    send(sock, {"forked": request["fork"], "pid": pid})
    return pid


def become_environment(request, output, server, sock, selector, libc):
    """In the child: its own process group, death with the server, its output, its environment."""
    try:
        os.setpgid(0, 0)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != server:
            os._exit(1)  # the server died before the death signal was set
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        for key in list(selector.get_map().values()):
            if key.data is not None:
                os.close(key.fd)
        selector.close()
        sock.close()
        environ = os.environ
        environ.clear()
        environ.update(request["env"])
    except BaseException:
        os._exit(1)


def reap(key, sock, selector):
    pid = key.data
    selector.unregister(key.fd)
    os.close(key.fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        send(sock, {"exited": pid, "signal": -code})
    else:
        send(sock, {"exited": pid, "code": code})
