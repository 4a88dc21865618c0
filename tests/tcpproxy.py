"""A TCP fault proxy for database connections: the soak puts it between worker processes and MariaDB or
PostgreSQL (vicirec's own database) and between them and VICIdial's MariaDB.

It reads the client's side of each connection message by message (MySQL packets, PostgreSQL messages),
so it knows when a transaction is open (MySQL: ``SET autocommit=0`` until COMMIT/ROLLBACK; PostgreSQL:
BEGIN until COMMIT/ROLLBACK) and can cut the connection in the middle of one: before a statement reaches
the server, or right after the server got it (a COMMIT whose answer never comes back included). It also
counts every statement that is not a read (``writes``): the wire-level proof that VICIdial's database
is never written to. PostgreSQL's SSL and GSS requests are answered "no" by the proxy, so the stream
stays readable. Only the standard library is used.
"""

from __future__ import annotations

import random
import re
import select
import socket
import struct
import threading
from dataclasses import dataclass, field

from tests.faultproxy import LoopbackProxy

_READS = re.compile(
    rb"^\s*(?:/\*.*?\*/\s*)*(SELECT|SHOW|SET|SAVEPOINT|RELEASE|ROLLBACK|COMMIT|BEGIN|START\s+TRANSACTION|EXPLAIN|"
    rb"DESCRIBE|DESC|DEALLOCATE|DISCARD)\b",
    re.IGNORECASE | re.DOTALL,
)
_BEGIN = re.compile(rb"^\s*(SET\s+autocommit\s*=\s*0|BEGIN|START\s+TRANSACTION)\b", re.IGNORECASE)
_END = re.compile(rb"^\s*(COMMIT|ROLLBACK)\s*;?\s*$", re.IGNORECASE)
_COMMIT = re.compile(rb"^\s*COMMIT\b", re.IGNORECASE)
_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104


@dataclass
class _Conn:
    client: socket.socket
    upstream: socket.socket
    startup: bool = True  # PostgreSQL: the first messages carry no type byte
    in_txn: bool = False
    buffer: bytearray = field(default_factory=bytearray)


class TcpFaultProxy(LoopbackProxy):
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream`` (host, port).

    ``protocol`` is "mysql" or "postgres". ``cut_rate`` is the chance that a statement inside an open
    transaction gets its connection cut (half before it reaches the server, half after); 0 forwards all.
    """

    def __init__(self, upstream: tuple[str, int], *, protocol: str, cut_rate: float = 0.0, seed: int = 0) -> None:
        self.upstream, self.protocol, self.cut_rate = upstream, protocol, cut_rate
        self.rng = random.Random(seed)
        self.cuts = 0  # connections cut inside an open transaction
        self.commit_cuts = 0  # of them: a COMMIT forwarded whose answer the client never got
        self.statements = 0
        self.writes = 0
        self.written: list[bytes] = []
        self._lock = threading.Lock()
        self._listen("tcpproxy")

    # --- one connection ----------------------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        conn = _Conn(client, upstream, startup=self.protocol == "postgres")
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.5)
                if upstream in ready:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    client.sendall(data)
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    conn.buffer.extend(data)
                    if not self._forward_client(conn):
                        return
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def _forward_client(self, conn: _Conn) -> bool:
        """Forward each complete client message; False once the connection is cut."""
        while message := self._next_message(conn):
            raw, query = message
            if query is None:
                conn.upstream.sendall(raw)
                continue
            with self._lock:
                self.statements += 1
                if not _READS.match(query):
                    self.writes += 1
                    self.written.append(query[:200])
                cut = conn.in_txn and self.cut_rate and self.rng.random() < self.cut_rate
                after = self.rng.random() < 0.5
            if cut:
                if after:
                    conn.upstream.sendall(raw)
                    self.commit_cuts += bool(_COMMIT.match(query))
                with self._lock:
                    self.cuts += 1
                return False
            if _BEGIN.match(query):
                conn.in_txn = True
            elif _END.match(query) or re.match(rb"^\s*SET\s+autocommit\s*=\s*1", query, re.IGNORECASE):
                conn.in_txn = False
            conn.upstream.sendall(raw)
        return True

    def _next_message(self, conn: _Conn) -> tuple[bytes, bytes | None] | None:
        """The next complete message in the buffer: its bytes and its SQL (None if not a statement)."""
        buf = conn.buffer
        if self.protocol == "mysql":
            if len(buf) < 4:
                return None
            length = buf[0] | buf[1] << 8 | buf[2] << 16
            if len(buf) < 4 + length:
                return None
            raw = bytes(buf[: 4 + length])
            del buf[: 4 + length]
            seq, payload = raw[3], raw[4:]
            query = payload[1:] if seq == 0 and payload[:1] in (b"\x03", b"\x16") else None  # QUERY, STMT_PREPARE
            return raw, query
        if conn.startup:
            if len(buf) < 8:
                return None
            length, code = struct.unpack("!ii", bytes(buf[:8]))
            if len(buf) < length:
                return None
            raw = bytes(buf[:length])
            del buf[:length]
            if code in (_SSL_REQUEST, _GSS_REQUEST):
                conn.client.sendall(b"N")  # no encryption: the proxy must read the stream
                return b"", None
            conn.startup = False
            return raw, None
        if len(buf) < 5:
            return None
        length = struct.unpack("!i", bytes(buf[1:5]))[0]
        if len(buf) < 1 + length:
            return None
        raw = bytes(buf[: 1 + length])
        del buf[: 1 + length]
        kind = raw[:1]
        if kind == b"Q":
            return raw, raw[5:].rstrip(b"\x00")
        if kind == b"P":  # Parse: name\0 query\0 ...
            return raw, raw[5:].split(b"\x00", 2)[1]
        return raw, None
