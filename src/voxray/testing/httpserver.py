"""A local HTTP server for files, with Range requests, ETags and injected faults.

Tests and benchmarks read "remote" images from it over real sockets::

    with RangeServer(directory, fail_rate=0.3) as server:
        img = vx.load(server.url("bold.nii.gz"))

It answers ``HEAD`` and ``GET`` (with a single ``Range: bytes=a-b``, ``If-Match``
and a strong ETag made of size and mtime), counts requests and bytes sent, and
misbehaves on demand: ``fail_rate`` of requests get a 503 or, with
``drop_rate``, a dropped connection (closed before the response, or in the
middle of the body); ``fail_always`` answers everything with 503;
``honour_range=False`` answers range requests with the whole file (as some
servers do); ``deny`` names files that answer 403; ``latency`` delays every
answer (seconds), like a distant server.

With ``upstream="http://127.0.0.1:PORT"`` instead of a directory it is a
fault-injecting proxy: requests that draw no fault are forwarded (an S3 API
server behind it sees them unchanged).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["RangeServer"]

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_SUFFIX = re.compile(r"bytes=-(\d+)$")  # the last N bytes (zarr reads shard indexes so)


class RangeServer:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a background thread."""

    def __init__(
        self,
        directory=None,
        *,
        upstream: str | None = None,
        honour_range: bool = True,
        fail_rate: float = 0.0,
        drop_rate: float = 0.0,
        fail_always: bool = False,
        deny: tuple[str, ...] = (),
        latency: float = 0.0,
        seed: int = 0,
    ):
        if (directory is None) == (upstream is None):
            raise ValueError("give a directory to serve or an upstream to forward to")
        self.directory = Path(directory) if directory is not None else None
        self.upstream = urlsplit(upstream) if upstream else None
        self.honour_range = honour_range
        self.fail_rate = fail_rate
        self.drop_rate = drop_rate
        self.fail_always = fail_always
        self.deny = set(deny)
        self.latency = latency
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests = 0
        self.faults = 0
        self.bytes_sent = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> RangeServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return self._httpd.server_address[1]

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.faults = self.bytes_sent = 0

    def _roll(self) -> str | None:
        """What goes wrong with this request: None, "fail" or "drop"."""
        with self._lock:
            self.requests += 1
            if self.fail_always:
                self.faults += 1
                return "fail"
            x = self._rng.random()
            if x < self.drop_rate:
                self.faults += 1
                return "drop"
            if x < self.drop_rate + self.fail_rate:
                self.faults += 1
                return "fail"
        return None

    def _sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n


def etag_of(path: Path) -> str:
    st = path.stat()
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


class _Handler(BaseHTTPRequestHandler):
    server_state: RangeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    def _file(self) -> Path | None:
        name = unquote(urlsplit(self.path).path).lstrip("/")
        path = (self.server_state.directory / name).resolve()
        if self.server_state.directory.resolve() not in path.parents or not path.is_file():
            return None
        return path

    def _plain(self, status: int, text: str = "") -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self, path: Path | None) -> None:
        """Close the connection: before the response, or after part of the body."""
        if path is not None and self.server_state._rng.random() < 0.5:
            size = path.stat().st_size
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as f:
                self.wfile.write(f.read(min(size // 2, 1024)))
            self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def do_PUT(self):
        self._serve(body=True)

    def do_POST(self):
        self._serve(body=True)

    def do_DELETE(self):
        self._serve(body=True)

    def _forward(self) -> None:
        import http.client

        up = self.server_state.upstream
        n = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(n) if n else None
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            conn.request(self.command, self.path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status)
        skip = {"transfer-encoding", "connection", "date", "server"}
        if self.command != "HEAD":  # a HEAD answer keeps the object's length
            skip.add("content-length")
        for k, v in resp.getheaders():
            if k.lower() not in skip:
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.server_state._sent(len(data))
            self.wfile.write(data)

    def _serve(self, body: bool) -> None:
        state = self.server_state
        if state.latency:
            time.sleep(state.latency)  # a round trip to a distant server
        if state.upstream is not None:
            fault = state._roll()
            if fault == "drop":
                return self._drop(None)
            if fault == "fail":
                return self._plain(503, "injected failure")
            return self._forward()
        path = self._file()
        fault = state._roll()
        if fault == "drop":
            return self._drop(path)
        if fault == "fail":
            return self._plain(503, "injected failure")
        if path is None:
            return self._plain(404, "not found")
        if path.name in state.deny:
            return self._plain(403, "forbidden")
        size = path.stat().st_size
        etag = etag_of(path)
        match = self.headers.get("If-Match")
        if match and match.strip() not in ("*", etag):
            return self._plain(412, "precondition failed")
        start, stop, status = 0, size, 200
        rng = self.headers.get("Range")
        if rng and state.honour_range:
            m = _RANGE.match(rng.strip())
            suffix = _SUFFIX.match(rng.strip())
            if m is not None:
                start = int(m.group(1))
                stop = min(size, int(m.group(2)) + 1) if m.group(2) else size
            elif suffix is not None and int(suffix.group(1)) > 0:
                start, stop = max(0, size - int(suffix.group(1))), size
            else:
                return self._plain(400, "unsupported Range")
            if start >= size or stop <= start:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", etag)
        if state.honour_range:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.end_headers()
        if not body:
            return
        with open(path, "rb") as f:
            pos = start
            try:
                while pos < stop:
                    chunk = os.pread(f.fileno(), min(1 << 20, stop - pos), pos)
                    if not chunk:
                        break
                    state._sent(len(chunk))  # before: the client may be done before write returns
                    self.wfile.write(chunk)
                    pos += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (it had what it wanted)
