"""A TCP proxy on 127.0.0.1 that forwards to a local server and can play dead.

The storage fault tests put it between netae's S3 client and moto's server.
Stopping moto would lose its in-memory objects, so the proxy simulates the
outage instead. While paused, it drops every open connection and closes each
new one right after accepting it, and moto keeps its data for the rerun.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

CHUNK_BYTES = 65_536


class PausableProxy:
    """Forward TCP connections from a free port on 127.0.0.1 to ``127.0.0.1:target_port``.

    Args:
        target_port: port of the server on 127.0.0.1 to forward to.

    Attributes:
        endpoint: ``host:port`` that clients connect to.
        refused_connections: connections closed because the proxy was paused.
    """

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._paused = False
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._pause_trigger: Callable[[bytes], bool] | None = None
        self.refused_connections = 0
        self._thread = threading.Thread(target=self._accept_loop, name="pausable-proxy", daemon=True)
        self._thread.start()

    @property
    def paused(self) -> bool:
        """Whether the proxy is refusing connections."""
        return self._paused

    def pause(self) -> None:
        """Drop every open connection and refuse new ones until ``resume``."""
        with self._lock:
            self._paused = True
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            _close(connection)
        logger.info("Proxy %s paused; %d open connection(s) dropped", self.endpoint, len(connections))

    def resume(self) -> None:
        """Forward connections again."""
        with self._lock:
            self._paused = False
            self._pause_trigger = None
        logger.info("Proxy %s resumed", self.endpoint)

    def pause_when(self, trigger: Callable[[bytes], bool]) -> None:
        """Pause as soon as ``trigger`` returns True for bytes a client sends; those bytes are dropped."""
        with self._lock:
            self._pause_trigger = trigger

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._closed = True
        self.pause()
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            if self._paused:
                self.refused_connections += 1
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target_port), timeout=10)
                upstream.settimeout(None)
            except OSError as error:
                logger.warning("Proxy %s cannot reach 127.0.0.1:%d: %s", self.endpoint, self._target_port, error)
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK_BYTES)
                if not data:
                    break
                trigger = self._pause_trigger
                if from_client and trigger is not None and trigger(data):
                    self.pause()
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(target)
            _close(source)
            _close(target)


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()
