"""smyth's bundled Python runtime: a Lambda Runtime API client, standard library only.

The server writes it as `smyth-bootstrap-<pid>-*/smyth_bootstrap.py` in the temp dir at start-up
(`launch::BootstrapFile`) and starts `smyth_runtime.py` beside it, which imports this module and calls
`run()`: imported, it is compiled once into `__pycache__` and loaded from there by every later cold
start of the same interpreter. The project root is the working directory; the Runtime API is
`SMYTH_RUNTIME_API_SOCKET` (a Unix socket) when set, else `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT`. It imports `_HANDLER` during init (a failure goes to
`/init/error` and the process exits 1), then loops: GET `/invocation/next` -> handler(event, context)
-> POST `/invocation/{id}/response` or `/error`.

The loop is the hot path of the whole product: one raw keep-alive socket with TCP_NODELAY, one
`sendall` per request, the HTTP response parsed by hand, nothing imported lazily that a no-op
invocation needs. Error paths import what they need (traceback) when they run.
"""

import _json
import _socket
import os
import sys
import time

API_PREFIX = "/2018-06-01/runtime"
NEXT_PATH = API_PREFIX + "/invocation/next"
INIT_ERROR_PATH = API_PREFIX + "/init/error"
RECV_SIZE = 65536
# The filename of this source's frames: the server runs it as a file (`<string>` if ever run with -c).
BOOTSTRAP_FILE = globals().get("__file__", "<string>")


# JSON through `_json`, the C scanner and encoder the `json` module itself uses, without importing
# `json`: it imports `re`, 15-20 ms of every cold start on a slow machine, more than the rest of this
# runtime. Whatever the fast path cannot take goes to `json` itself (its errors included).
class _ScanOptions:
    """What `_json.make_scanner` reads: `json.loads`'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


JSON_WHITESPACE = " \t\n\r"
try:
    _scan = _json.make_scanner(_ScanOptions)
except (AttributeError, TypeError):
    _scan = None


def _json_module():
    import json

    return json


def json_loads(raw):
    """`json.loads(raw)` for bytes or str."""
    if _scan is not None:
        try:
            text = raw if isinstance(raw, str) else raw.decode("utf-8")
            start = len(text) - len(text.lstrip(JSON_WHITESPACE))
            value, end = _scan(text, start)
            if not text[end:].strip(JSON_WHITESPACE):
                return value
        except (StopIteration, ValueError):
            pass
    return _json_module().loads(raw)


def _not_serializable(obj):
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def json_encoder(ensure_ascii=True, default=_not_serializable):
    """`json.JSONEncoder(ensure_ascii=..., default=..., allow_nan=True).encode`."""
    try:
        string = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
        chunks = _json.make_encoder({}, default, string, None, ": ", ", ", False, False, True)
    except (AttributeError, TypeError):
        json = _json_module()
        return json.JSONEncoder(ensure_ascii=ensure_ascii, default=default, allow_nan=True).encode

    def encode(value):
        if isinstance(value, str):
            return string(value)
        return "".join(chunks(value, 0))

    return encode


json_dumps = json_encoder()


# The 202 that answers a result on smyth's Unix socket (src/runtime_api/wire.rs), byte for byte: taken
# without parsing. Any other answer is parsed in full.
ACCEPTED_BODY = b'{"status":"OK"}'
ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n" + ACCEPTED_BODY
)
ACCEPTED_LEN = len(ACCEPTED)
ACCEPTED_HEADERS = {b"content-type": b"application/json", b"content-length": b"15"}


class RuntimeApiClosed(ConnectionError):
    """The server closed the connection before a full response arrived."""


class Connection:
    """One keep-alive HTTP/1.1 connection to the Runtime API, spoken by hand: over the worker's Unix
    socket when the server gave one (`SMYTH_RUNTIME_API_SOCKET`: no loopback TCP stack, and the
    kernel tells the server who is calling), else over TCP to `AWS_LAMBDA_RUNTIME_API`."""

    __slots__ = ("host", "port", "unix_path", "sock", "buf", "host_header")

    def __init__(self, address, unix_path=None):
        host, _, port = address.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        self.unix_path = unix_path
        self.sock = None
        self.buf = b""
        self.host_header = ("Host: %s\r\n" % address).encode("latin-1")

    def connect(self):
        if self.unix_path:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        else:
            sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            if self.unix_path:
                sock.connect(self.unix_path)
            else:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.buf = b""

    def request(self, data):
        """Send one complete request (bytes) and return (status, headers, body).

        A connection the server has closed (keep-alive expiry while the handler ran, a restart) is
        reopened once and the request sent again.
        """
        for attempt in (0, 1):
            if self.sock is None:
                self.connect()
            try:
                self.sock.sendall(data)
                return self.read_response()
            except ConnectionError:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def post_then_next(self, post, next_request):
        """Send a result and the next `/next` in one write (HTTP/1.1 pipelining): one round trip per
        invocation instead of two. Returns the result's (status, headers, body) and the next event's.
        """
        for attempt in (0, 1):
            if self.sock is None:
                self.connect()
            try:
                self.sock.sendall(post + next_request)
                posted = self.read_response()
                if self.sock is None:  # the server closed after answering the result
                    return posted, self.request(next_request)
                return posted, self.read_response()
            except ConnectionError:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def read_response(self):
        recv = self.sock.recv
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            chunk = recv(RECV_SIZE)
            if not chunk:
                raise RuntimeApiClosed("connection closed by the Runtime API")
            buf += chunk
            end = buf.find(b"\r\n\r\n")
        if buf.startswith(ACCEPTED):  # a result's answer from smyth's own socket, as it always is
            self.buf = buf[ACCEPTED_LEN:]
            return 202, ACCEPTED_HEADERS, ACCEPTED_BODY
        lines = buf[:end].split(b"\r\n")
        rest = buf[end + 4 :]
        try:
            status = int(lines[0][9:12])
        except ValueError:
            raise RuntimeApiClosed("malformed status line %r" % lines[0]) from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get(b"content-length")
        if length is not None and b"transfer-encoding" not in headers:
            length = int(length)
            while len(rest) < length:
                chunk = recv(RECV_SIZE)
                if not chunk:
                    raise RuntimeApiClosed("connection closed in the middle of a body")
                rest += chunk
            body = rest[:length]
            self.buf = rest[length:]
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = self.read_chunked(rest)
        elif status < 200 or status in (204, 304):
            body = b""
            self.buf = rest
        else:
            body = self.read_to_close(rest)
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, headers, body

    def read_more(self, buf, what):
        chunk = self.sock.recv(RECV_SIZE)
        if not chunk:
            raise RuntimeApiClosed("connection closed in the middle of " + what)
        return buf + chunk

    def read_chunked(self, buf):
        parts = []
        while True:
            end = buf.find(b"\r\n")
            while end < 0:
                buf = self.read_more(buf, "a chunk size")
                end = buf.find(b"\r\n")
            size = int(buf[:end].split(b";", 1)[0].strip(), 16)
            buf = buf[end + 2 :]
            if size == 0:
                # Trailers (usually none), then the empty line that ends the message.
                while True:
                    end = buf.find(b"\r\n")
                    while end < 0:
                        buf = self.read_more(buf, "the trailers")
                        end = buf.find(b"\r\n")
                    line, buf = buf[:end], buf[end + 2 :]
                    if not line:
                        self.buf = buf
                        return b"".join(parts)
            while len(buf) < size + 2:
                buf = self.read_more(buf, "a chunk")
            parts.append(buf[:size])
            buf = buf[size + 2 :]

    def read_to_close(self, buf):
        parts = [buf]
        while True:
            chunk = self.sock.recv(RECV_SIZE)
            if not chunk:
                break
            parts.append(chunk)
        self.close()
        return b"".join(parts)

    def post(self, path, body, extra_headers=b""):
        return self.request(
            b"".join(
                (
                    b"POST ",
                    path.encode("latin-1"),
                    b" HTTP/1.1\r\n",
                    self.host_header,
                    b"Content-Type: application/json\r\nContent-Length: ",
                    str(len(body)).encode("ascii"),
                    b"\r\n",
                    extra_headers,
                    b"\r\n",
                    body,
                )
            )
        )


# --- the context object, as AWS's (awslambdaric's LambdaContext) has it ---------------------------


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity_id=None, pool_id=None):
        self.cognito_identity_id = identity_id
        self.cognito_identity_pool_id = pool_id

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = (
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    )

    def __repr__(self):
        return "Client([%s])" % ",".join(
            "%s=%s" % (name, getattr(self, name)) for name in self.__slots__
        )


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _from_dict(cls, data):
    obj = cls()
    get = data.get if isinstance(data, dict) else {}.get
    for name in cls.__slots__:
        setattr(obj, name, get(name))
    return obj


# awslambdaric 4.x surfaces only these W3C trace-context fields through `context.w3c()`.
W3C_FIELDS = ("traceparent", "tracestate", "baggage")
# No client context and no trace context (`w3c()` returns a copy, so sharing the dict is safe).
NO_CLIENT_CONTEXT = (None, {})


def make_client_context(raw):
    """`Lambda-Runtime-Client-Context` (JSON) -> (ClientContext or None, the W3C trace-context dict),
    like awslambdaric 4.x: its `w3c` key is taken out of the client context, string fields only."""
    if not raw:
        return None, {}
    try:
        data = json_loads(raw)
    except ValueError:
        print("smyth bootstrap: ignoring a client context that is not JSON", file=sys.stderr)
        return None, {}
    if data is None:
        return None, {}
    w3c = {}
    if isinstance(data, dict) and "w3c" in data:
        raw_w3c = data.pop("w3c")
        if isinstance(raw_w3c, dict):
            w3c = {k: raw_w3c[k] for k in W3C_FIELDS if isinstance(raw_w3c.get(k), str)}
    context = _from_dict(ClientContext, data)
    if context.client is not None:
        context.client = _from_dict(Client, context.client)
    return context, w3c


def make_identity(raw):
    """`Lambda-Runtime-Cognito-Identity` (JSON) -> CognitoIdentity (always an object, like AWS)."""
    if not raw:
        return CognitoIdentity()
    try:
        data = json_loads(raw)
    except ValueError:
        return CognitoIdentity()
    if not isinstance(data, dict):
        return CognitoIdentity()
    return CognitoIdentity(data.get("cognitoIdentityId"), data.get("cognitoIdentityPoolId"))


class Worker:
    """What this process knows about itself, for Smyth's `context.smyth`."""

    __slots__ = ("name", "strategy", "handler_path", "invocations", "last_used", "config")

    def __init__(self, environ):
        self.name = environ.get("SMYTH_WORKER", "")
        self.strategy = environ.get("SMYTH_STRATEGY", "first_warm")
        self.handler_path = environ.get("_HANDLER", "")
        self.invocations = 0  # invocations before the current one, as Smyth's task_counter
        self.last_used = 0  # epoch seconds (float) when the previous invocation started; 0 if none
        self.config = None


def _smyth_handler_config(worker):
    if worker.config is None:
        environ = os.environ
        name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        worker.config = {
            "name": name,
            "lambda_handler_path": worker.handler_path,
            "url_path": environ.get("SMYTH_URL_PATH"),
            "timeout": _float_or_none(environ.get("SMYTH_TIMEOUT")),
            "concurrency": _int_or_none(environ.get("SMYTH_CONCURRENCY")),
            "strategy": worker.strategy,
            "log_level": environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO"),
            "fake_coldstart": False,
        }
    return worker.config


def _float_or_none(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class LambdaContext:
    """The `context` argument: AWS's attributes plus Smyth's `context.smyth`.

    Built once per invocation, so it only stores what the invocation brings; the function-wide
    attributes are class attributes set once at init, and `smyth` is computed when read.
    """

    __slots__ = (
        "aws_request_id",
        "invoked_function_arn",
        "client_context",
        "identity",
        "tenant_id",
        "_w3c",
        "_deadline_ms",
        "_invocations",
        "_last_used",
    )

    function_name = ""
    function_version = "$LATEST"
    memory_limit_in_mb = "128"
    log_group_name = ""
    log_stream_name = ""
    _worker = None

    def __init__(
        self, request_id, deadline_ms, arn, client_context, identity, invocations, last_used, tenant_id=None
    ):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.invoked_function_arn = arn
        self.client_context, self._w3c = client_context
        self.identity = identity
        self.tenant_id = tenant_id
        self._invocations = invocations
        self._last_used = last_used

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def w3c(self):
        """The W3C trace context the caller sent (awslambdaric 4.x)."""
        return dict(self._w3c)

    def log(self, msg):
        sys.stdout.write(str(msg))

    @property
    def smyth(self):
        worker = self._worker
        return {
            "process": {
                "name": worker.name,
                "state": "cold" if self._invocations == 0 else "warm",
                "task_counter": self._invocations,
                "last_used_timestamp": self._last_used,
                "pid": os.getpid(),
            },
            "handler": {
                "name": self.function_name,
                "strategy": worker.strategy,
                "smyth_handler_config": _smyth_handler_config(worker),
            },
        }

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


def configure_context(environ, worker):
    LambdaContext.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    LambdaContext.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    # A string, as awslambdaric reads it from the environment.
    LambdaContext.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    LambdaContext.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
    LambdaContext.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
    LambdaContext._worker = worker


# --- errors ----------------------------------------------------------------------------------------


class InitError(Exception):
    def __init__(self, error_type, message, stack_trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


def user_frames(tb):
    """The traceback's frames without this bootstrap's and importlib's own, as AWS does."""
    import traceback

    importlib = sys.modules.get("importlib")
    machinery = (BOOTSTRAP_FILE, getattr(importlib, "__file__", BOOTSTRAP_FILE))
    return traceback.StackSummary.from_list(
        frame
        for frame in traceback.extract_tb(tb)
        if frame.filename not in machinery and not frame.filename.startswith("<frozen ")
    )


def format_error(error_type, message, stack_trace):
    """AWS's log shape: `[ERROR] Type: message` then the traceback lines."""
    lines = ["[ERROR] " + error_type + (": " + message if message else "")]
    if stack_trace:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            lines.extend(element.rstrip("\n").splitlines())
    return "\n".join(lines)


def error_body(error_type, message, stack_trace, request_id=None):
    doc = {"errorMessage": message, "errorType": error_type}
    if request_id is not None:
        doc["requestId"] = request_id
    doc["stackTrace"] = stack_trace
    return json_dumps(doc).encode("utf-8")


def load_handler(handler):
    """Import `module.function` (or `dir/module.function`); raise InitError with AWS's type."""
    modname, dot, fname = handler.rpartition(".")
    if not dot or not modname or not fname:
        raise InitError(
            "Runtime.MalformedHandlerName",
            "Bad handler '%s': not enough values to unpack (expected 2, got 1)" % handler,
        )
    import importlib

    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as error:
        raise InitError(
            "Runtime.ImportModuleError",
            "Unable to import module '%s': %s%s" % (modname, error, import_hint(error)),
            _trace(error),
        ) from error
    except SyntaxError as error:
        raise InitError(
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module '%s': %s" % (modname, error),
            ['  File "%s" Line %s\n    %s\n' % (error.filename, error.lineno, (error.text or "").strip())],
        ) from error
    except Exception as error:
        raise InitError(
            "Runtime.ImportModuleError",
            "Unable to import module '%s': %s: %s" % (modname, type(error).__name__, error),
            _trace(error),
        ) from error
    function = getattr(module, fname, None)
    if function is None:
        raise InitError(
            "Runtime.HandlerNotFound",
            "Handler '%s' missing on module '%s'%s" % (fname, modname, did_you_mean(fname, module)),
        )
    if not callable(function):
        raise InitError(
            "Runtime.HandlerNotFound",
            "Handler '%s' on module '%s' is not callable (it is a %s)"
            % (fname, modname, type(function).__name__),
        )
    return function


def import_hint(error):
    """How to fix a module that is not found: the folder of the project it sits in, else sys.path."""
    missing = getattr(error, "name", None)
    if not isinstance(error, ModuleNotFoundError) or not missing:
        return ""
    top = missing.partition(".")[0]
    root = os.getcwd()
    try:
        folders = sorted(os.listdir(root))
    except OSError:
        folders = []
    for folder in folders:
        if folder.startswith(".") or folder in ("node_modules", "__pycache__", "site-packages"):
            continue
        base = os.path.join(root, folder)
        if os.path.isdir(os.path.join(base, top)) or os.path.isfile(os.path.join(base, top + ".py")):
            return (
                "; '%s' is in %s/: add python_path = [\"%s\"] to [tool.smyth] "
                "(or install the project into the interpreter smyth uses, %s)"
                % (top, folder, folder, sys.executable)
            )
    own = os.path.dirname(os.path.abspath(BOOTSTRAP_FILE))
    return "; sys.path was %s" % [entry for entry in sys.path if entry != own]


def did_you_mean(name, module):
    """`. Did you mean 'x'?` among the module's public callables (or the list of them)."""
    import difflib

    names = sorted(
        n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
    )
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return ". Did you mean '%s'?" % close[0]
    if names:
        shown = names[:10]
        return ". Its callables: %s%s" % (", ".join(shown), ", …" if len(names) > 10 else "")
    return ""


def _trace(error):
    import traceback

    return traceback.format_list(user_frames(error.__traceback__))


def listen_for_debugger(port):
    """`debugpy_port` under `smyth run --debug`: an IDE can attach before the handler is imported."""
    try:
        import debugpy
    except ImportError:
        print(
            "smyth bootstrap: debugpy_port is set but debugpy is not installed in %s "
            "(pip install debugpy); running without it" % sys.executable,
            file=sys.stderr,
        )
        return
    debugpy.listen(("127.0.0.1", port))
    print("smyth bootstrap: debugpy listening on 127.0.0.1:%d" % port, file=sys.stderr)


def report_init_error(conn, error):
    """Report to `/init/error`; smyth logs what it gets there in one line, so the error is printed
    here only when it could not be reported."""
    body = error_body(error.error_type, error.message, error.stack_trace)
    try:
        status, _, answer = conn.post(
            INIT_ERROR_PATH,
            body,
            b"Lambda-Runtime-Function-Error-Type: " + error.error_type.encode("latin-1") + b"\r\n",
        )
        if status != 202:
            print(format_error(error.error_type, error.message, error.stack_trace), file=sys.stderr)
            print(
                "smyth bootstrap: /init/error answered %d: %s"
                % (status, answer.decode("utf-8", "replace")),
                file=sys.stderr,
            )
    except OSError as failure:
        print(format_error(error.error_type, error.message, error.stack_trace), file=sys.stderr)
        print("smyth bootstrap: could not report the init error: %s" % failure, file=sys.stderr)


# awslambdaric 4.x's `_RESERVED_FIELDS`: record attributes that are not `extra=` fields.
LOG_RESERVED_FIELDS = frozenset(
    (
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
        "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
        "relativeCreated", "thread", "threadName", "processName", "process", "aws_request_id",
        "tenant_id", "_frame_type",
    )
)
JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def json_logs():
    """`AWS_LAMBDA_LOG_FORMAT=JSON` (a handler's `log_format = "JSON"`)."""
    return os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def setup_logging():
    """Give the root logger a Lambda handler, as awslambdaric does: AWS's text lines, or with
    `AWS_LAMBDA_LOG_FORMAT=JSON` its JSON objects, filtered by `AWS_LAMBDA_LOG_LEVEL`.

    In text mode it is set up once the handler's module (or anything it imports, now or during an
    invocation) has imported `logging`, so handlers that don't log don't pay its import at cold start;
    a root logger the user's code configured itself is left alone. In JSON mode it is set up before the
    handler is imported, as AWS does.
    """
    import logging

    class RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = CURRENT[0] or ""
            return True

    root = logging.getLogger()
    if root.handlers:  # the user's code configured logging itself (e.g. basicConfig at import)
        return True
    logging.Formatter.converter = time.gmtime
    if json_logs():
        handler = stdout_handler()
        handler.setFormatter(json_formatter(logging))
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"):
        root.setLevel({"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level))
    return True


def stdout_handler():
    """A handler that writes each formatted record (which ends its own line) to stdout."""
    import logging

    class Handler(logging.Handler):
        def emit(self, record):
            try:
                sys.stdout.write(self.format(record))
            except Exception:
                self.handleError(record)

    return Handler()


def json_formatter(logging):
    """awslambdaric 4.x's `JsonFormatter`, field for field."""
    import traceback

    encode = json_encoder(ensure_ascii=False, default=str)

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            exc_info = record.exc_info
            result = {
                "timestamp": self.formatTime(record, JSON_DATE_FORMAT),
                "level": record.levelname,
                "message": (
                    record.msg
                    if isinstance(record.msg, dict) and not record.args
                    else record.getMessage()
                ),
                "logger": record.name,
                "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
                "errorType": exc_info[0].__name__ if exc_info else None,
                "errorMessage": str(exc_info[1]) if exc_info else None,
                "requestId": getattr(record, "aws_request_id", None),
                "location": (
                    "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
                    if exc_info
                    else None
                ),
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            result.update(
                (key, value)
                for key, value in record.__dict__.items()
                if key not in LOG_RESERVED_FIELDS and key not in result
            )
            return encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()


def log_error(error_type, message, stack_trace, request_id=None):
    """An unhandled error in the log: AWS's `[ERROR] Type: message` and traceback on stderr, or in
    JSON mode awslambdaric's one JSON object on stdout."""
    if not json_logs():
        print(format_error(error_type, message, stack_trace), file=sys.stderr)
        return
    line = {
        "timestamp": time.strftime(JSON_DATE_FORMAT, time.gmtime()),
        "level": "ERROR",
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace or [],
    }
    sys.stdout.write(json_dumps(line) + "\n")


CURRENT = [None]  # the request id being served, for the logging filter


def result_encoder(environ):
    """awslambdaric's result JSON: `json.dumps`'s default separators (`{"a": 1}`), NaN allowed, and
    UTF-8 rather than `\\u` escapes on Python 3.12 and later."""
    modern = environ.get("AWS_EXECUTION_ENV") in (
        "AWS_Lambda_python3.12",
        "AWS_Lambda_python3.13",
        "AWS_Lambda_python3.14",
        "AWS_Lambda_python3.15",
    )
    return json_encoder(ensure_ascii=not modern, default=_marshal_default)


def tenant(raw):
    """`Lambda-Runtime-Aws-Tenant-Id`: `context.tenant_id`, None unless tenant isolation is on."""
    return raw.decode("utf-8", "replace") if raw else None


def _marshal_default(obj):
    # AWS's runtime serialises Decimal (e.g. from DynamoDB) as a number.
    if type(obj).__name__ == "Decimal":
        return float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


# --- the zygote: ordinary cold starts as forks ---------------------------------------------------


def zygote(fd):
    """This process has loaded the runtime and nothing of the user's. Each cold start is a fork of
    it: `serve` returns in the fork with its worker's environment applied, and the fork goes on as a
    spawned runtime would, importing the handler in its own init. Never returns in the zygote."""
    loaded = set(sys.modules)
    import smyth_forkserver

    sites = site_folders()
    smyth_forkserver.serve(fd, {"python": list(sys.version_info[:2])})
    # The fork has loaded what a spawned runtime has, no more: what the fork server needed (json,
    # socket, ctypes, ...) is imported afresh if the handler imports it, as in a new interpreter.
    for name in [name for name in sys.modules if name not in loaded]:
        del sys.modules[name]
    for finder in sys.meta_path:  # importlib.invalidate_caches(): files written since are found
        invalidate = getattr(finder, "invalidate_caches", None)
        if invalidate is not None:
            invalidate()
    changed = [folder for folder, seen in sites.items() if changed_at(folder) != seen]
    if changed:
        # `site` reads `.pth` files only at start-up: a package installed since (an editable one,
        # say) is found in a fork as it would be in a fresh interpreter.
        import site

        for folder in changed:
            site.addsitedir(folder)


def site_folders():
    """The site-packages folders on sys.path, each with when it last changed."""
    return {entry: changed_at(entry) for entry in sys.path if entry.endswith("-packages")}


def changed_at(folder):
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


# --- SnapStart: the template and its restored environments ----------------------------------------


def snapshot_template(fd):
    """`snap_start = true`: this process is the handler's template (the snapshot). It imports the
    handler and runs the before-snapshot hooks once, then forks environments (`smyth_forkserver`).
    Returns the handler in each restored environment, or the exit code when init failed (reported
    to smyth over the fork server's socket: the template has no Runtime API of its own)."""
    import socket

    def failed(error_type, message, stack_trace, code):
        body = error_body(error_type, message, stack_trace).decode("utf-8")
        control = socket.socket(fileno=os.dup(fd))
        control.send(json_dumps({"init_error": {"type": error_type, "body": body}}).encode("utf-8"))
        control.close()
        return code

    if json_logs():  # as AWS: set up before the handler is imported
        setup_logging()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except InitError as error:
        return failed(error.error_type, error.message, error.stack_trace, 1)
    hooks = sys.modules.get("snapshot_restore_py")
    try:
        # awslambdaric's order: the last registered runs first.
        before = hooks.get_before_snapshot() if hooks else []
        while before:
            func, args, kwargs = before.pop()
            func(*args, **kwargs)
    except Exception as error:
        log_error(type(error).__name__, str(error), _trace(error))
        return failed("Runtime.BeforeSnapshotError", str(error), _trace(error), 64)
    import smyth_forkserver

    # A snapshot restores `random`'s state as it was; CPython reseeds it in a forked child.
    random = sys.modules.get("random")
    state = random.getstate() if random else None
    smyth_forkserver.serve(fd, {"python": list(sys.version_info[:2])})
    if random:
        random.setstate(state)
    return handler


def run_after_restore(conn):
    """The after-restore hooks, in registration order; a failure goes to `/restore/error`
    (`Runtime.AfterRestoreError`) and the environment exits 65, as with awslambdaric."""
    hooks = sys.modules.get("snapshot_restore_py")
    try:
        for func, args, kwargs in hooks.get_after_restore() if hooks else []:
            func(*args, **kwargs)
    except Exception as error:
        error_type = "Runtime.AfterRestoreError"
        log_error(type(error).__name__, str(error), _trace(error))
        body = error_body(type(error).__name__, str(error), _trace(error))
        header = b"Lambda-Runtime-Function-Error-Type: " + error_type.encode() + b"\r\n"
        conn.post(API_PREFIX + "/restore/error", body, header)
        return 65
    return 0


# --- the loop --------------------------------------------------------------------------------------


def main():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass

    environ = os.environ
    template = environ.pop("SMYTH_FORKSERVER_FD", None)
    if template is not None and environ.pop("SMYTH_ZYGOTE", None):
        zygote(int(template))  # returns in each fork, with its worker's environment
        template = None
    if template is not None:
        handler = snapshot_template(int(template))
        if type(handler) is int:
            return handler
    address = environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        print("smyth bootstrap: AWS_LAMBDA_RUNTIME_API is not set", file=sys.stderr)
        return 1
    conn = Connection(address, environ.get("SMYTH_RUNTIME_API_SOCKET"))
    worker = Worker(environ)
    configure_context(environ, worker)

    if template is not None:  # a restored environment
        code = run_after_restore(conn)
        if code:
            return code
    else:
        debugpy_port = environ.get("SMYTH_DEBUGPY_PORT")
        if debugpy_port:
            listen_for_debugger(int(debugpy_port))
        if json_logs():  # as AWS: set up before the handler is imported
            setup_logging()
        if environ.get("AWS_LAMBDA_MAX_CONCURRENCY"):
            serve_concurrently(int(environ["AWS_LAMBDA_MAX_CONCURRENCY"]))
        try:
            handler = load_handler(environ.get("_HANDLER", ""))
        except InitError as error:
            report_init_error(conn, error)
            return 1
    modules = sys.modules
    logging_ready = "logging" in modules and setup_logging()

    # Everything the loop touches, bound to locals.
    request = conn.request
    next_request = (
        b"GET " + NEXT_PATH.encode() + b" HTTP/1.1\r\n" + conn.host_header + b"\r\n"
    )
    post_head = b"POST " + API_PREFIX.encode() + b"/invocation/"
    response_head = (
        b"/response HTTP/1.1\r\n"
        + conn.host_header
        + b"Content-Type: application/json\r\nContent-Length: "
    )
    error_head = (
        b"/error HTTP/1.1\r\n"
        + conn.host_header
        + b"Content-Type: application/json\r\n"
        + b"Lambda-Runtime-Function-Error-Type: Unhandled\r\nContent-Length: "
    )
    loads = json_loads
    encode = result_encoder(environ)
    now = time.time
    make_context = LambdaContext
    put_env = environ.__setitem__
    current = CURRENT
    stderr = sys.stderr
    trace_env = "_X_AMZN_TRACE_ID"
    invocations = 0
    last_used = 0

    post_then_next = conn.post_then_next
    status, headers, body = request(next_request)
    while True:
        if status != 200:
            print(
                "smyth bootstrap: /invocation/next answered %d: %s"
                % (status, body.decode("utf-8", "replace")),
                file=stderr,
            )
            return 1
        rid = headers.get(b"lambda-runtime-aws-request-id", b"")
        request_id = rid.decode("latin-1")
        current[0] = request_id
        trace_id = headers.get(b"lambda-runtime-trace-id")
        if trace_id:
            put_env(trace_env, trace_id.decode("latin-1"))
        elif trace_env in environ:
            del environ[trace_env]
        client_context = headers.get(b"lambda-runtime-client-context")
        context = make_context(
            request_id,
            int(headers.get(b"lambda-runtime-deadline-ms") or 0),
            headers.get(b"lambda-runtime-invoked-function-arn", b"").decode("latin-1"),
            make_client_context(client_context) if client_context else NO_CLIENT_CONTEXT,
            make_identity(headers.get(b"lambda-runtime-cognito-identity")),
            invocations,
            last_used,
            tenant(headers.get(b"lambda-runtime-aws-tenant-id")),
        )
        last_used = now()
        invocations += 1
        try:
            result = handler(loads(body) if body else None, context)
        except Exception as error:
            payload = invocation_error(error, request_id)
            head = error_head
        else:
            try:
                payload = result if type(result) is bytes else encode(result).encode()
                head = response_head
            except Exception as error:
                payload = marshal_error(error, request_id)
                head = error_head
            result = None
        if not logging_ready and "logging" in modules:
            logging_ready = setup_logging()
        post = b"".join((post_head, rid, head, str(len(payload)).encode(), b"\r\n\r\n", payload))
        (posted, _, answer), (status, headers, body) = post_then_next(post, next_request)
        if posted != 202:
            print(
                "smyth bootstrap: the Runtime API refused the result of %s (%d): %s"
                % (request_id, posted, answer.decode("utf-8", "replace")),
                file=stderr,
            )


def serve_concurrently(processes):
    """Lambda Managed Instances: fork one process per concurrent slot; each returns here, runs its own
    init (imports the handler, as each of AWS's runtime worker processes does) and the ordinary loop
    on its own connection (the parent never opens one). The parent stays to replace a process that
    dies, so a crash does not end the environment; it never returns."""
    children = set()
    while True:
        while len(children) < processes:
            pid = os.fork()
            if pid == 0:
                return
            children.add(pid)
        try:
            pid, status = os.wait()
        except ChildProcessError:
            children.clear()
            continue
        if pid in children:
            children.discard(pid)
            print(
                "smyth bootstrap: process %d ended (wait status %d); starting its replacement"
                % (pid, status),
                file=sys.stderr,
            )
            time.sleep(0.05)  # a process that dies at once must not become a fork storm


def invocation_error(error, request_id):
    """The `/error` body for an exception raised by the handler, its traceback to stderr."""
    import traceback

    error_type = type(error).__name__
    message = str(error)
    stack_trace = traceback.format_list(user_frames(error.__traceback__))
    log_error(error_type, message, stack_trace, request_id)
    return error_body(error_type, message, stack_trace, request_id)


def marshal_error(error, request_id):
    """The `/error` body for a result that json cannot serialise (AWS's `Runtime.MarshalError`)."""
    error_type = "Runtime.MarshalError"
    message = "Unable to marshal response: %s" % error
    log_error(error_type, message, [], request_id)
    return error_body(error_type, message, [], request_id)


def run():
    """The process's entry point: `smyth_runtime.py` calls it."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except ConnectionError as lost:  # the server went away: nothing left to serve
        print("smyth bootstrap: lost the Runtime API: %s" % lost, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
