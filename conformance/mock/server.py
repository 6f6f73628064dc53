"""Serve an ASGI app with uvicorn on a loopback port in a daemon thread.

A real socket is the one code path that both the suite's httpx client and Schemathesis's
``requests`` calls can use, so the mock is always reached over HTTP (STYLE rule 11).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# How long in-flight requests may take once the server stops before uvicorn cancels them.
GRACEFUL_SHUTDOWN = 1


class MockServer:
    """Context manager: ``with MockServer(create_app()) as server: httpx.get(server.base_url + …)``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal needs brackets
        return f"http://{host}:{self.port}"

    def credentials(self) -> dict[str, str]:
        """The seeded credentials of the app's world, with ``RAFF_BASE_URL`` first."""
        return {"RAFF_BASE_URL": self.base_url, **self.app.state.world.credentials()}

    def start(self) -> MockServer:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        # Bind first, so that port 0 becomes a real port before anyone is told the URL.
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP,
        # and without it every keep-alive answer waits ~40 ms for a delayed ACK.
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,  # leave the process's logging setup (pytest's capture) alone
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        )
        server = uvicorn.Server(config)
        closing = getattr(getattr(self.app, "state", None), "closing", None)
        if isinstance(closing, threading.Event):
            closing.clear()
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="raff-mock", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"the mock server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        self._wait_accepting(deadline)
        return self

    def _wait_accepting(self, deadline: float) -> None:
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the mock server does not accept connections on {self.host}:{self.port}"
                    ) from exc
                time.sleep(0.01)

    def stop(self, *, wait: bool = True) -> None:
        """Stop serving. ``wait=False`` only asks uvicorn to exit (it takes ~0.2 s); a later
        ``stop()`` waits for it, so many servers can be wound down side by side."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        closing = getattr(getattr(self.app, "state", None), "closing", None)
        if isinstance(closing, threading.Event):
            closing.set()  # hung requests (fault "hang") let go instead of waiting to be cancelled
        server.should_exit = True
        if not wait:
            return
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT)
        self._server, self._thread = None, None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
