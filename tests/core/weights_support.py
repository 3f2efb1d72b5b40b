"""Helpers of the weights tests in tests/core and the weights rows of tests/reliability.

``FileServer``: a local HTTP server that serves files from memory and can misbehave (cut,
short, trickling or hanging answers, HTTP errors); ``can_write_in``: whether a folder accepts a
new file (root ignores permission bits). tests/reliability/cases/weights.py puts this folder on
``sys.path`` to import it, as test_weights.py does.
"""

from __future__ import annotations

import http.server
import os
import tempfile
import threading
import time
from pathlib import Path


def can_write_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (the probe is removed again)."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(probe)
    return True


class FileServer:
    """A tiny HTTP server on 127.0.0.1 serving files from memory and counting requests.

    ``files`` maps a path to its bytes; ``headers`` adds headers to a path's answer;
    ``status`` answers a path with that HTTP error; ``modes`` makes a path misbehave:

    * ``"cut"``: a chunked answer that stops after the first chunk (no final chunk);
    * ``"short"``: a ``Content-Length`` answer closed after half of the bytes;
    * ``"trickle"``: a chunked answer of one byte every 0.3 s (for 15 s at most);
    * ``"hang"``: accepts the request and never answers (until the server closes).

    ``delay`` waits that many seconds before each GET answer (to make downloads overlap).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.status: dict[str, int] = {}
        self.modes: dict[str, str] = {}
        self.delay = 0.0
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        self._closed = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                server.requests.append((self.command, self.path))
                if self.path in server.status:
                    self.send_error(server.status[self.path])
                    return
                mode = server.modes.get(self.path)
                if mode == "hang":
                    server.release.wait(120)
                    self.close_connection = True
                    return
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                if body and server.delay:
                    time.sleep(server.delay)
                self.send_response(200)
                if mode in ("cut", "trickle"):
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(data)))
                for key, value in server.headers.get(self.path, {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not body:
                    return
                if mode == "cut":
                    half = data[: len(data) // 2]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
                    self.close_connection = True
                elif mode == "short":
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                elif mode == "trickle":
                    self._trickle(data)
                else:
                    self.wfile.write(data)

            def _trickle(self, data: bytes) -> None:
                try:
                    for index in range(min(len(data), 50)):
                        if server.release.wait(0.3):
                            break
                        self.wfile.write(b"1\r\n%s\r\n" % data[index : index + 1])
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client gave up
                    pass
                self.close_connection = True

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The address of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def gets(self, path: str) -> int:
        """How many GET requests asked for ``path``."""
        return sum(1 for method, asked in self.requests if method == "GET" and asked == path)

    def close(self) -> None:
        """Release hanging answers and stop the server (once)."""
        if self._closed:
            return
        self._closed = True
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
