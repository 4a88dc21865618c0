"""A fault-injecting HTTP proxy for the tests: it sits between boto3 and the S3 server (SeaweedFS).

Point an S3 client's ``endpoint_url`` at ``FaultProxy.url``; every request is forwarded byte for byte
(headers untouched, so SigV4 signatures, which cover the Host header, stay valid) unless the proxy's
``rule`` says otherwise. The rule is a callable that sees each request (method, path, query, headers, a
running count) before its body is read and returns a `Fault` or None. `Rules` builds the common ones:
"the first N PUTs get a 503", "every HEAD under this key stalls", "every 7th request is dropped".

Faults:

* ``drop``           close the connection without an answer (the request never reaches the server);
* ``drop_response``  forward the request, let the server act on it, then close without passing the answer
                     back (a PUT that *did* store, seen by the client as a failure);
* ``status``         answer with an HTTP status and an S3 XML error body (500 InternalError, 503
                     ServiceUnavailable, 503 SlowDown, …) without reaching the server;
* ``stall``          hold the request (``stall_response``: forward it, hold the answer) for ``seconds``,
                     longer than the client's read timeout, then close;
* ``flip``           invert one byte of the request body at ``offset`` on its way to the server;
* ``rewrite``        forward, then pass the server's response head through a function (e.g. replace the
                     x-amz-checksum-sha256 a HEAD returns: a server that lies about what it holds).

Bodies are streamed in chunks, never held whole, so a 200 MB upload costs the proxy a few buffers. Each
connection carries one request: the proxy adds ``Connection: close`` both ways (an unsigned header), so
a client never reuses a socket the proxy is about to drop. Only the standard library is used.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Self
from urllib.parse import urlsplit

CHUNK = 256 * 1024
FaultKind = Literal["drop", "drop_response", "status", "stall", "stall_response", "flip", "rewrite"]

_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 503: "Slow Down"}
_DEFAULT_CODES = {500: "InternalError", 503: "ServiceUnavailable", 404: "NoSuchKey", 403: "AccessDenied"}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 0
    code: str = ""
    seconds: float = 0.0
    offset: int = 0
    rewrite: Callable[[bytes], bytes] | None = None

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def drop_response(cls) -> Fault:
        return cls("drop_response")

    @classmethod
    def error(cls, status: int, code: str = "") -> Fault:
        return cls("status", status=status, code=code or _DEFAULT_CODES.get(status, "InternalError"))

    @classmethod
    def slow_down(cls) -> Fault:
        return cls("status", status=503, code="SlowDown")

    @classmethod
    def stall(cls, seconds: float, *, after_forwarding: bool = False) -> Fault:
        return cls("stall_response" if after_forwarding else "stall", seconds=seconds)

    @classmethod
    def flip(cls, offset: int = 100) -> Fault:
        return cls("flip", offset=offset)

    @classmethod
    def rewrite_head(cls, function: Callable[[bytes], bytes]) -> Fault:
        return cls("rewrite", rewrite=function)

    def describe(self) -> str:
        if self.kind == "status":
            return f"{self.status} {self.code}"
        if self.kind in ("stall", "stall_response"):
            return f"{self.kind} {self.seconds:g}s"
        if self.kind == "flip":
            return f"flip byte {self.offset}"
        return self.kind


@dataclass(frozen=True)
class Request:
    """What a rule sees: the request head (the body has not been read yet) and its running number."""

    number: int  # 1-based, over the proxy's life
    method: str
    path: str  # URL path, e.g. "/bucket/SALES/2026/11/01/x.mp3"
    query: str
    headers: dict[str, str]  # lower-case names

    @property
    def key(self) -> str:
        """The object key (path without the bucket), "" for bucket-level requests."""
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) == 2 else ""


@dataclass
class Seen:
    request: Request
    fault: Fault | None
    upstream_status: int | None = None


Rule = Callable[[Request], Fault | None]


@dataclass
class Rules:
    """An ordered list of (match, fault, times) entries; the first live match wins. Thread-safe.

    ``method`` and ``path`` (a regular expression searched in the path) narrow a match; ``times`` is how
    many requests it applies to (None: all), ``every`` applies it to every n-th matching request only.
    """

    entries: list[dict[str, object]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        fault: Fault,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        every: int = 1,
        query: str | None = None,
    ) -> Rules:
        self.entries.append(
            {
                "fault": fault,
                "method": method,
                "path": re.compile(path) if path else None,
                "query": re.compile(query) if query else None,
                "left": times,
                "every": every,
                "matched": 0,
            }
        )
        return self

    def __call__(self, request: Request) -> Fault | None:
        with self._lock:
            for entry in self.entries:
                if entry["method"] and entry["method"] != request.method:
                    continue
                if entry["path"] is not None and not entry["path"].search(request.path):  # type: ignore[attr-defined]
                    continue
                if entry["query"] is not None and not entry["query"].search(request.query):  # type: ignore[attr-defined]
                    continue
                entry["matched"] = int(entry["matched"]) + 1  # type: ignore[call-overload]
                if int(entry["matched"]) % int(entry["every"]) != 0:  # type: ignore[call-overload]
                    continue
                if entry["left"] is not None:
                    if int(entry["left"]) <= 0:  # type: ignore[call-overload]
                        continue
                    entry["left"] = int(entry["left"]) - 1  # type: ignore[call-overload]
                return entry["fault"]  # type: ignore[return-value]
        return None


def _error_body(code: str, message: str, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource>"
        "<RequestId>faultproxy</RequestId></Error>"
    ).encode()


class _Closed(Exception):
    pass


def _read_head(sock: socket.socket, buffer: bytearray) -> bytes:
    """Read up to and including the blank line ending an HTTP head; leftover bytes stay in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(CHUNK)
        if not data:
            raise _Closed
        buffer.extend(data)
        if len(buffer) > 1024 * 1024:
            raise _Closed
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    del buffer[:end]
    return head


def _parse_headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    pairs = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        pairs.append((name.strip(), value.strip()))
    return lines[0], pairs


def _build_head(first: str, pairs: list[tuple[str, str]]) -> bytes:
    return (first + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in pairs) + "\r\n").encode("latin-1")


class LoopbackProxy:
    """A listener on 127.0.0.1 (a free port) that hands each connection to ``_serve`` on a thread of its
    own; the fault proxies below build on it. ``close()`` (or leaving the ``with`` block) stops it."""

    def _listen(self, name: str) -> None:
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._name = name
        self._thread = threading.Thread(target=self._accept, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name=f"{self._name}-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:  # pragma: no cover - each proxy defines it
        raise NotImplementedError


class FaultProxy(LoopbackProxy):
    """A threaded reverse proxy on 127.0.0.1 (a free port) in front of ``upstream_url``."""

    def __init__(self, upstream_url: str, *, rule: Rule | None = None) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rule: Rule = rule or (lambda request: None)
        self.seen: list[Seen] = []
        self.total_faults = 0  # over the proxy's life, whatever reset() clears
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._listen("faultproxy")
        self.url = f"http://127.0.0.1:{self.port}"

    # --- bookkeeping used by tests ------------------------------------------------------------------

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self._lock:
            seen = list(self.seen)
        return [
            s
            for s in seen
            if (method is None or s.request.method == method) and (path is None or re.search(path, s.request.path))
        ]

    @property
    def faults_injected(self) -> int:
        return self.total_faults

    def reset(self, rule: Rule | None = None) -> None:
        with self._lock:
            self.seen.clear()
        self.rule = rule or (lambda request: None)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            client.settimeout(60)
            buffer = bytearray()
            head = _read_head(client, buffer)
            first, pairs = _parse_headers(head)
            method, target, _version = first.split(" ", 2)
            url = urlsplit(target)
            headers = {n.lower(): v for n, v in pairs}
            request = Request(next(self._numbers), method, url.path, url.query, headers)
            fault = self.rule(request)
            seen = Seen(request, fault)
            with self._lock:
                self.seen.append(seen)
                self.total_faults += fault is not None
            expects = headers.get("expect", "").lower() == "100-continue"
            length = int(headers.get("content-length", "0") or 0)

            if fault is not None and fault.kind == "drop":
                return
            if fault is not None and fault.kind == "stall":
                self._stop.wait(fault.seconds)
                return
            if fault is not None and fault.kind == "status":
                if not expects:
                    self._discard(client, buffer, length)
                body = _error_body(fault.code, f"injected by faultproxy ({fault.describe()})", url.path)
                reason = "Slow Down" if fault.code == "SlowDown" else _REASONS.get(fault.status, "Error")
                answer = [
                    ("Content-Type", "application/xml"),
                    ("Content-Length", str(len(body) if method != "HEAD" else 0)),
                    ("x-amz-request-id", "faultproxy"),
                    ("Connection", "close"),
                ]
                client.sendall(_build_head(f"HTTP/1.1 {fault.status} {reason}", answer))
                if method != "HEAD":
                    client.sendall(body)
                return

            # Forward: headers as they came (the signature covers them), minus Expect and Connection.
            upstream = socket.create_connection(self.upstream, timeout=60)
            forwarded = [(n, v) for n, v in pairs if n.lower() not in ("expect", "connection")]
            forwarded.append(("Connection", "close"))
            upstream.sendall(_build_head(first, forwarded))
            if expects and length:
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._pipe_body(client, upstream, buffer, length, fault)

            if fault is not None and fault.kind == "stall_response":
                self._stop.wait(fault.seconds)
                return
            response = bytearray()
            response_head = _read_head(upstream, response)
            status_line, response_pairs = _parse_headers(response_head)
            seen.upstream_status = int(status_line.split(" ", 2)[1])
            if fault is not None and fault.kind == "drop_response":
                self._drain(upstream, response)  # let the server finish what it was asked to do
                return
            response_pairs = [(n, v) for n, v in response_pairs if n.lower() != "connection"]
            response_pairs.append(("Connection", "close"))
            out_head = _build_head(status_line, response_pairs)
            if fault is not None and fault.kind == "rewrite" and fault.rewrite is not None:
                out_head = fault.rewrite(out_head)
            client.sendall(out_head)
            if response:
                client.sendall(bytes(response))
            while data := upstream.recv(CHUNK):
                client.sendall(data)
        except (_Closed, OSError, ValueError, IndexError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()

    @staticmethod
    def _discard(client: socket.socket, buffer: bytearray, length: int) -> None:
        left = length - len(buffer)
        buffer.clear()
        while left > 0:
            data = client.recv(min(CHUNK, left))
            if not data:
                raise _Closed
            left -= len(data)

    @staticmethod
    def _drain(upstream: socket.socket, buffer: bytearray) -> None:
        buffer.clear()
        while upstream.recv(CHUNK):
            pass

    @staticmethod
    def _pipe_body(
        client: socket.socket, upstream: socket.socket, buffer: bytearray, length: int, fault: Fault | None
    ) -> None:
        """Stream ``length`` body bytes from client to upstream, flipping one if the fault says so."""
        sent = 0
        pending = bytes(buffer)
        buffer.clear()
        while sent < length:
            data = pending or client.recv(min(CHUNK, length - sent))
            pending = b""
            if not data:
                raise _Closed
            data = data[: length - sent]
            if fault is not None and fault.kind == "flip" and sent <= fault.offset < sent + len(data):
                index = fault.offset - sent
                data = data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]
            upstream.sendall(data)
            sent += len(data)
