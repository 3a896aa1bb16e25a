"""A local HTTP server for the data-command tests (127.0.0.1 only, never the internet).

It serves a folder and can corrupt a file's bytes or drop the connection half-way through a file, to test
that a failed download leaves nothing at the data path.
"""

import http.server
import socket
import threading
from contextlib import contextmanager
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    corrupt: set = set()  # paths served with one byte changed
    drop_once: set = set()  # paths whose first request is cut off half-way
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.lstrip("/")
        type(self).requests.append(path)
        if path in self.corrupt or path in self.drop_once:
            data = Path(self.directory, path).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if path in self.drop_once:
                self.drop_once.discard(path)
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(bytes([data[0] ^ 1]) + data[1:])
            return
        super().do_GET()


@contextmanager
def serve(directory: Path, corrupt=(), drop_once=()):
    """An HTTP server on 127.0.0.1 (free port) serving `directory`; yields its base URL."""
    handler = type(
        "Handler", (_Handler,), {"corrupt": set(corrupt), "drop_once": set(drop_once), "requests": []}
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(directory), **k)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
