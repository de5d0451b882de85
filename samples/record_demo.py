"""Record netae's labelled demo capture on the loopback interface.

The script starts its own HTTP, DNS-like UDP and TCP echo servers on 127.0.0.1 and
records the loopback interface with dumpcap. Benign client hosts (127.0.0.10-12) talk to
the servers throughout, and an attacker at 127.0.0.66 runs a TCP connect port scan and a
connection burst. The script then writes a per-frame labels file derived from the
recorded capture.

Phases, in order:
    1. benign: the client hosts only (``--benign-seconds``).
    2. attack: a port scan, then a connection burst to the HTTP server, while the
       benign hosts keep going (``--attack-seconds``).
    3. tail: the benign hosts only (``--tail-seconds``).

Outputs, written whole and renamed into place only after a complete run:
    ``<out-dir>/demo.pcapng``: pcapng, one interface (``lo``, link type Ethernet).
    ``<out-dir>/demo.labels.csv``: ``first_frame,last_frame,label,attack``, one row per
    maximal run of consecutive frames of one attack. Frame numbers are 1-based as in
    Wireshark, and frames not listed are normal.

Linux only: it relies on all of 127.0.0.0/8 being routed to ``lo`` and on
``/proc/net/tcp``. dumpcap needs capture rights on ``lo`` (root, or the
``cap_net_raw,cap_net_admin`` capabilities on dumpcap). Standard library plus ``rich``.

Usage:
    python samples/record_demo.py --out-dir samples/demo --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import http.server
import logging
import os
import random
import select
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

logger = logging.getLogger("record_demo")

SERVER_ADDRESS = "127.0.0.1"
BENIGN_HOST_ADDRESSES = ("127.0.0.10", "127.0.0.11", "127.0.0.12")
ATTACKER_ADDRESS = "127.0.0.66"

CAPTURE_FILE_NAME = "demo.pcapng"
LABELS_FILE_NAME = "demo.labels.csv"
LABELS_HEADER = ("first_frame", "last_frame", "label", "attack")
ANOMALY_LABEL = "anomaly"
PORT_SCAN_ATTACK = "port-scan"
CONNECTION_BURST_ATTACK = "connection-burst"

DEFAULT_BENIGN_SECONDS = 150.0
DEFAULT_ATTACK_SECONDS = 10.0
DEFAULT_TAIL_SECONDS = 20.0
DEFAULT_SEED = 7
DEFAULT_SCAN_FIRST_PORT = 30000
DEFAULT_SCAN_PORT_COUNT = 400
DEFAULT_BURST_CONNECTIONS = 80

# Share of the attack phase given to the port scan. The connection burst gets the rest.
SCAN_SHARE_OF_ATTACK = 0.6
SCAN_CONNECT_TIMEOUT_S = 0.2
CLIENT_TIMEOUT_S = 5.0
SERVER_HANDLER_TIMEOUT_S = 5.0
CAPTURE_START_TIMEOUT_S = 15.0
CAPTURE_STOP_TIMEOUT_S = 15.0
# The margin guards against a race between dumpcap's "Capturing on" message and the
# first frames of the benign hosts, at the cost of half a second.
CAPTURE_READY_MARGIN_S = 0.5
# Time for the last FIN/ACK exchanges of closed connections to reach the capture.
DRAIN_BEFORE_STOP_S = 1.0
# Mean pause between two actions of one benign host. Pauses are drawn from an
# exponential distribution, so each host's actions start like a Poisson process.
BENIGN_MEAN_PAUSE_S = 0.55


# --------------------------------------------------------------------------- servers


def _build_page(title: str, size_bytes: int) -> bytes:
    """Build a deterministic HTML page of exactly ``size_bytes`` bytes."""
    head = f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>\n"
    tail = "</body></html>\n"
    filler_line = f"<p>{title}: netae demo content, line padding text.</p>\n"
    filler_bytes = max(0, size_bytes - len(head) - len(tail))
    filler = (filler_line * (filler_bytes // len(filler_line) + 1))[:filler_bytes]
    return (head + filler + tail).encode("ascii")


# Content type and body by request path. Bodies range from 36 to 9,800 bytes so
# that frame lengths vary. The loopback MTU is 65536 bytes, so each response goes out as
# one segment of headers and one of body.
HTTP_PAGES: dict[str, tuple[str, bytes]] = {
    "/": ("text/html", _build_page("home", 1_200)),
    "/about.html": ("text/html", _build_page("about", 640)),
    "/news.html": ("text/html", _build_page("news", 4_300)),
    "/report.html": ("text/html", _build_page("report", 9_800)),
    "/style.css": ("text/css", b"body { font-family: sans-serif; }\n" * 60),
    "/api/status": ("application/json", b'{"status": "ok", "uptime_s": 86400}\n'),
}
HTTP_MISSING_PATH = "/old-page.html"


class DemoHTTPRequestHandler(http.server.BaseHTTPRequestHandler):
    """Serve ``HTTP_PAGES`` with HTTP/1.1 keep-alive, and 404 for any other path."""

    protocol_version = "HTTP/1.1"
    server_version = "netae-demo/1"
    timeout = SERVER_HANDLER_TIMEOUT_S

    def do_GET(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        content_type, body = HTTP_PAGES.get(self.path, ("text/plain", b"not found\n"))
        status = 200 if self.path in HTTP_PAGES else 404
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base signature)
        logger.debug("http %s: " + format, self.client_address[0], *args)


class DemoHTTPServer(http.server.ThreadingHTTPServer):
    """Threaded HTTP server whose backlog absorbs the connection burst without SYN drops."""

    request_queue_size = 512
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        logger.debug("http server: error on connection from %s", client_address, exc_info=True)


DNS_TYPE_A = 1
DNS_TYPE_AAAA = 28
DNS_CLASS_IN = 1
DNS_HEADER = struct.Struct("!HHHHHH")
# Names end in .test (reserved by RFC 6761) and the records use documentation prefixes
# (192.0.2.0/24, 2001:db8::/32), so nothing in the capture points at a real host.
DNS_KNOWN_NAMES = ("www.example.test", "api.example.test", "cdn.example.test",
                   "mail.example.test", "metrics.example.test")
DNS_UNKNOWN_NAME = "nonexistent.example.test"


def encode_dns_query(query_id: int, name: str, query_type: int) -> bytes:
    """Encode a DNS query message (RFC 1035) with one question and recursion desired."""
    header = DNS_HEADER.pack(query_id, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.split("."))
    return header + labels + b"\x00" + struct.pack("!HH", query_type, DNS_CLASS_IN)


def encode_dns_response(query: bytes) -> bytes | None:
    """Encode the DNS response to ``query``, or return None when the query is malformed.

    Known names get one A or AAAA record derived from a CRC of the name, unknown names
    get NXDOMAIN. The question section is copied back as RFC 1035 requires.
    """
    if len(query) < DNS_HEADER.size + 5:
        return None
    query_id, _flags, question_count, *_ = DNS_HEADER.unpack_from(query)
    if question_count != 1:
        return None

    # Walk the question name to find where the question ends.
    offset = DNS_HEADER.size
    labels: list[str] = []
    while offset < len(query) and query[offset] != 0:
        length = query[offset]
        labels.append(query[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    question_end = offset + 1 + 4
    if question_end > len(query):
        return None
    name = ".".join(labels)
    query_type, _query_class = struct.unpack_from("!HH", query, offset + 1)
    question = query[DNS_HEADER.size:question_end]

    if name not in DNS_KNOWN_NAMES:
        header = DNS_HEADER.pack(query_id, 0x8183, 1, 0, 0, 0)
        return header + question

    host_part = zlib.crc32(name.encode("ascii")) % 250 + 1
    if query_type == DNS_TYPE_AAAA:
        address = bytes.fromhex("20010db8" + "00" * 11) + bytes([host_part])
    else:
        query_type = DNS_TYPE_A
        address = bytes([192, 0, 2, host_part])
    answer = struct.pack("!HHHIH", 0xC00C, query_type, DNS_CLASS_IN, 300, len(address)) + address
    header = DNS_HEADER.pack(query_id, 0x8180, 1, 1, 0, 0)
    return header + question + answer


class DNSLikeUDPHandler(socketserver.BaseRequestHandler):
    """Reply to one DNS-wire-format query per datagram, and drop malformed datagrams."""

    def handle(self) -> None:
        data, server_socket = self.request
        response = encode_dns_response(data)
        if response is None:
            logger.debug("dns server: dropped malformed datagram from %s", self.client_address)
            return
        server_socket.sendto(response, self.client_address)


class EchoTCPHandler(socketserver.StreamRequestHandler):
    """Echo each received line back until the client closes the connection."""

    timeout = SERVER_HANDLER_TIMEOUT_S

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            for line in self.rfile:
                self.wfile.write(line)
                self.wfile.flush()


class DemoThreadingTCPServer(socketserver.ThreadingTCPServer):
    """Threaded TCP server that joins its handler threads on close."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 64


class ServiceEndpoints(NamedTuple):
    """Ports on ``SERVER_ADDRESS`` where the demo services listen."""

    http_port: int
    dns_port: int
    echo_port: int


class DemoServers:
    """The three demo services, each served from its own thread.

    Use as a context manager. Entering binds all sockets on free ports and starts
    serving, and leaving shuts every server down and joins its threads.
    """

    def __init__(self) -> None:
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self.endpoints: ServiceEndpoints | None = None

    def __enter__(self) -> DemoServers:
        try:
            http_server = DemoHTTPServer((SERVER_ADDRESS, 0), DemoHTTPRequestHandler)
            self._servers.append(http_server)
            dns_server = socketserver.UDPServer((SERVER_ADDRESS, 0), DNSLikeUDPHandler)
            self._servers.append(dns_server)
            echo_server = DemoThreadingTCPServer((SERVER_ADDRESS, 0), EchoTCPHandler)
            self._servers.append(echo_server)
        except BaseException:
            self.__exit__(None, None, None)
            raise

        for server, name in zip(self._servers, ("http", "dns", "echo")):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name=f"demo-{name}-server")
            thread.start()
            self._threads.append(thread)

        self.endpoints = ServiceEndpoints(
            http_port=http_server.server_address[1],
            dns_port=dns_server.server_address[1],
            echo_port=echo_server.server_address[1],
        )
        logger.info("servers on %s: http %d, dns-like udp %d, echo tcp %d",
                    SERVER_ADDRESS, *self.endpoints)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Only servers whose thread started are in serve_forever; shutdown() on any
        # other would wait forever.
        for server, thread in zip(self._servers, self._threads):
            if thread.is_alive():
                server.shutdown()
        for thread in self._threads:
            thread.join()
        for server in self._servers:
            server.server_close()
        self._servers.clear()
        self._threads.clear()


# --------------------------------------------------------------------------- benign hosts


class BenignHost(threading.Thread):
    """A client host bound to one loopback address that makes request-response traffic.

    Each action is one of: an HTTP GET on its own connection (``Connection: close``),
    a keep-alive HTTP session of several GETs, one or two DNS-like queries, or an echo
    session of several lines. Actions are separated by exponential pauses of mean
    ``BENIGN_MEAN_PAUSE_S``. All randomness comes from ``rng``, so a seed reproduces the
    sequence of actions (timings still depend on the machine).
    """

    ACTION_WEIGHTS = {"http_get_close": 3, "http_keepalive": 2, "dns_query": 4, "echo_session": 2}

    def __init__(self, address: str, endpoints: ServiceEndpoints, rng: random.Random,
                 stop_event: threading.Event) -> None:
        super().__init__(name=f"benign-host-{address}")
        self.address = address
        self.endpoints = endpoints
        self.rng = rng
        self.stop_event = stop_event
        self.action_counts: Counter[str] = Counter()
        self.error_counts: Counter[str] = Counter()

    def run(self) -> None:
        actions = list(self.ACTION_WEIGHTS)
        weights = list(self.ACTION_WEIGHTS.values())
        while not self.stop_event.is_set():
            action = self.rng.choices(actions, weights)[0]
            try:
                getattr(self, action)()
                self.action_counts[action] += 1
            except (OSError, http.client.HTTPException) as error:
                # Logged once per kind of failure; the counts go into the final summary.
                if not self.error_counts[action]:
                    logger.warning("host %s: %s failed: %s", self.address, action, error)
                self.error_counts[action] += 1
            self.stop_event.wait(self.rng.expovariate(1.0 / BENIGN_MEAN_PAUSE_S))

    def _pick_path(self) -> str:
        if self.rng.random() < 0.05:
            return HTTP_MISSING_PATH
        return self.rng.choice(list(HTTP_PAGES))

    def _http_connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(SERVER_ADDRESS, self.endpoints.http_port,
                                          timeout=CLIENT_TIMEOUT_S,
                                          source_address=(self.address, 0))

    def http_get_close(self) -> None:
        connection = self._http_connection()
        try:
            connection.request("GET", self._pick_path(), headers={"Connection": "close"})
            connection.getresponse().read()
        finally:
            connection.close()

    def http_keepalive(self) -> None:
        connection = self._http_connection()
        try:
            for _ in range(self.rng.randint(2, 5)):
                connection.request("GET", self._pick_path())
                connection.getresponse().read()
                if self.stop_event.wait(self.rng.uniform(0.05, 0.4)):
                    break
        finally:
            connection.close()

    def dns_query(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_socket:
            udp_socket.bind((self.address, 0))
            udp_socket.settimeout(CLIENT_TIMEOUT_S)
            for _ in range(self.rng.choice((1, 1, 2))):
                name = DNS_UNKNOWN_NAME if self.rng.random() < 0.1 else self.rng.choice(DNS_KNOWN_NAMES)
                query_type = DNS_TYPE_AAAA if self.rng.random() < 0.3 else DNS_TYPE_A
                query = encode_dns_query(self.rng.getrandbits(16), name, query_type)
                udp_socket.sendto(query, (SERVER_ADDRESS, self.endpoints.dns_port))
                udp_socket.recvfrom(512)

    def echo_session(self) -> None:
        with socket.create_connection((SERVER_ADDRESS, self.endpoints.echo_port),
                                      timeout=CLIENT_TIMEOUT_S,
                                      source_address=(self.address, 0)) as tcp_socket:
            reader = tcp_socket.makefile("rb")
            for _ in range(self.rng.randint(2, 6)):
                line = ("echo " + "x" * self.rng.randint(10, 400) + "\n").encode("ascii")
                tcp_socket.sendall(line)
                if reader.readline() != line:
                    raise OSError("echo server returned a different line")
                if self.stop_event.wait(self.rng.uniform(0.02, 0.3)):
                    break
            reader.close()


# --------------------------------------------------------------------------- attacker


def find_listening_tcp_ports() -> set[int]:
    """Return every TCP port with a listening socket on this machine, any address.

    Reads ``/proc/net/tcp`` and ``/proc/net/tcp6`` (state 0A is LISTEN). The port scan
    skips these ports, so it reaches only ports where nothing listened when it started.
    """
    ports: set[int] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def scan_one_port(port: int) -> str:
    """Probe ``port`` on the server address with one non-blocking TCP connect.

    Returns:
        "open", "closed" (refused, the usual SYN then RST/ACK) or "filtered" (no reply
        within ``SCAN_CONNECT_TIMEOUT_S``). The socket is closed at once in every case.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        probe.bind((ATTACKER_ADDRESS, 0))
        probe.connect_ex((SERVER_ADDRESS, port))
        _, writable, _ = select.select([], [probe], [], SCAN_CONNECT_TIMEOUT_S)
        if not writable:
            return "filtered"
        return "open" if probe.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 else "closed"


def run_port_scan(ports: Sequence[int], duration_s: float, progress: Progress,
                  stop_event: threading.Event) -> Counter[str]:
    """Probe ``ports`` in order, spread evenly over ``duration_s``, and count the outcomes."""
    task = progress.add_task("attack: port scan", total=len(ports))
    interval_s = duration_s / max(1, len(ports))
    start = time.monotonic()
    outcomes: Counter[str] = Counter()
    for index, port in enumerate(ports):
        if stop_event.is_set():
            break
        outcomes[scan_one_port(port)] += 1
        progress.advance(task)
        delay_s = start + (index + 1) * interval_s - time.monotonic()
        if delay_s > 0:
            stop_event.wait(delay_s)
    return outcomes


def run_connection_burst(http_port: int, connection_count: int, duration_s: float,
                         progress: Progress, stop_event: threading.Event) -> Counter[str]:
    """Open and at once close ``connection_count`` TCP connections to the HTTP server.

    Nothing is sent on them, so each is a handshake followed by a FIN exchange.
    Connections are spread evenly over ``duration_s``.
    """
    task = progress.add_task("attack: connection burst", total=connection_count)
    interval_s = duration_s / max(1, connection_count)
    start = time.monotonic()
    outcomes: Counter[str] = Counter()
    for index in range(connection_count):
        if stop_event.is_set():
            break
        try:
            with socket.create_connection((SERVER_ADDRESS, http_port), timeout=CLIENT_TIMEOUT_S,
                                          source_address=(ATTACKER_ADDRESS, 0)):
                pass
            outcomes["connected"] += 1
        except OSError as error:
            if not outcomes["failed"]:
                logger.warning("connection burst: connect to port %d failed: %s", http_port, error)
            outcomes["failed"] += 1
        progress.advance(task)
        delay_s = start + (index + 1) * interval_s - time.monotonic()
        if delay_s > 0:
            stop_event.wait(delay_s)
    return outcomes


# --------------------------------------------------------------------------- capture


def build_capture_filter(endpoints: ServiceEndpoints, scan_ports: range) -> str:
    """Build a BPF filter that keeps only this script's traffic.

    A frame is kept when it is between the server address and one of the demo's client
    addresses, and touches a demo service port or the scan range.
    """
    clients = " or ".join(f"host {address}" for address in (*BENIGN_HOST_ADDRESSES, ATTACKER_ADDRESS))
    ports = (f"port {endpoints.http_port} or port {endpoints.dns_port} or port {endpoints.echo_port}"
             f" or portrange {scan_ports.start}-{scan_ports.stop - 1}")
    return f"host {SERVER_ADDRESS} and ({clients}) and ({ports})"


class LoopbackCapture:
    """A dumpcap child process that records ``lo`` into a pcapng file.

    Entering starts dumpcap in its own session (so a terminal Ctrl-C reaches only this
    script, which then stops dumpcap last) and waits until dumpcap reports that it is
    capturing. ``stop`` sends SIGINT so that dumpcap flushes and closes the file, and
    escalates to SIGTERM and SIGKILL if it does not exit in time.
    """

    def __init__(self, output_path: Path, capture_filter: str) -> None:
        self.output_path = output_path
        self.capture_filter = capture_filter
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_lines: list[str] = []
        self._stderr_thread: threading.Thread | None = None
        self._capturing = threading.Event()

    def __enter__(self) -> LoopbackCapture:
        dumpcap = shutil.which("dumpcap")
        if dumpcap is None:
            raise FileNotFoundError("dumpcap not found on PATH. Install Wireshark's dumpcap "
                                    "(Debian package wireshark-common or tshark)")
        command = [dumpcap, "-i", "lo", "-n", "-f", self.capture_filter, "-w", str(self.output_path)]
        logger.info("starting: %s", " ".join(command))
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, start_new_session=True)
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="dumpcap-stderr")
        self._stderr_thread.start()

        deadline = time.monotonic() + CAPTURE_START_TIMEOUT_S
        while not self._capturing.wait(0.1):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"dumpcap did not start capturing on lo within {CAPTURE_START_TIMEOUT_S:.0f} s "
                    f"(exit status {self._process.returncode}); its output: "
                    f"{' | '.join(self._stderr_lines) or '(none)'}. Capturing needs root or the "
                    "cap_net_raw,cap_net_admin capabilities on dumpcap.")
        time.sleep(CAPTURE_READY_MARGIN_S)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        # Without a terminal, dumpcap separates its running "Packets: N" counts with
        # carriage returns, so those count as line ends too.
        for raw_line in self._process.stderr:
            for part in raw_line.decode("utf-8", "replace").split("\r"):
                line = part.strip()
                if not line or line.startswith("Packets: "):
                    continue
                self._stderr_lines.append(line)
                logger.debug("dumpcap: %s", line)
                if line.startswith("Capturing on"):
                    self._capturing.set()

    def stop(self) -> None:
        """Stop dumpcap, wait for it, and raise RuntimeError if it exited with an error."""
        process = self._process
        if process is None:
            return
        self._process = None

        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=CAPTURE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("dumpcap (pid %d) did not stop within %.0f s of SIGINT, so it is terminated",
                               process.pid, CAPTURE_STOP_TIMEOUT_S)
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join()
        assert process.stderr is not None
        process.stderr.close()

        for line in self._stderr_lines:
            if line.startswith("Packets"):
                logger.info("dumpcap: %s", line)
        if process.returncode != 0:
            raise RuntimeError(f"dumpcap exited with status {process.returncode} while writing "
                               f"{self.output_path}; its output: {' | '.join(self._stderr_lines)}")


# --------------------------------------------------------------------------- labels


class FrameEndpoints(NamedTuple):
    """Addresses and TCP ports of one frame as tshark decodes them (None when absent)."""

    frame_number: int
    ip_src: str | None
    ip_dst: str | None
    tcp_srcport: int | None
    tcp_dstport: int | None


class LabelRun(NamedTuple):
    """One row of the labels file: frames ``first_frame``..``last_frame`` inclusive, 1-based."""

    first_frame: int
    last_frame: int
    label: str
    attack: str


def read_frame_endpoints(capture_path: Path) -> list[FrameEndpoints]:
    """Read the frame number, IPv4 addresses and TCP ports of every frame with tshark."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise FileNotFoundError("tshark not found on PATH. Install the Debian package tshark")
    command = [tshark, "-n", "-r", str(capture_path), "-T", "fields", "-E", "separator=\t",
               "-e", "frame.number", "-e", "ip.src", "-e", "ip.dst",
               "-e", "tcp.srcport", "-e", "tcp.dstport"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"tshark failed to read {capture_path} (status {result.returncode}): "
                           f"{result.stderr.strip()}")

    frames = []
    for line in result.stdout.splitlines():
        number, ip_src, ip_dst, tcp_srcport, tcp_dstport = line.split("\t")
        frames.append(FrameEndpoints(
            frame_number=int(number),
            ip_src=ip_src or None,
            ip_dst=ip_dst or None,
            tcp_srcport=int(tcp_srcport) if tcp_srcport else None,
            tcp_dstport=int(tcp_dstport) if tcp_dstport else None,
        ))
    return frames


def classify_frame_attack(frame: FrameEndpoints, http_port: int, scan_ports: range) -> str | None:
    """Return the attack a frame belongs to, or None for a normal frame.

    Every frame to or from ``ATTACKER_ADDRESS`` is anomalous. The server-side TCP port
    decides which attack: a port in ``scan_ports`` is the port scan, ``http_port`` is the
    connection burst.

    Raises:
        ValueError: an attacker frame matches neither attack, so the labels would be wrong.
    """
    if ATTACKER_ADDRESS not in (frame.ip_src, frame.ip_dst):
        return None
    server_port = frame.tcp_dstport if frame.ip_src == ATTACKER_ADDRESS else frame.tcp_srcport
    if server_port in scan_ports:
        return PORT_SCAN_ATTACK
    if server_port == http_port:
        return CONNECTION_BURST_ATTACK
    raise ValueError(
        f"frame {frame.frame_number} involves the attacker {ATTACKER_ADDRESS} but its server-side "
        f"TCP port {server_port} is neither the HTTP port {http_port} nor in the scan range "
        f"{scan_ports.start}-{scan_ports.stop - 1}; another program may have used this address "
        "during the recording, so record again")


def build_label_runs(frame_attacks: Iterable[tuple[int, str | None]]) -> list[LabelRun]:
    """Group consecutive frames of the same attack into label rows.

    Args:
        frame_attacks: ``(frame_number, attack or None)`` in increasing frame order, with
            no gaps in the numbering.

    Returns:
        One ``LabelRun`` per maximal run of consecutive frames with the same attack. Two
        rows are adjacent (no normal frame between them) only when their attacks differ.
    """
    runs: list[LabelRun] = []
    for frame_number, attack in frame_attacks:
        if attack is None:
            continue
        if runs and runs[-1].attack == attack and runs[-1].last_frame == frame_number - 1:
            runs[-1] = runs[-1]._replace(last_frame=frame_number)
        else:
            runs.append(LabelRun(frame_number, frame_number, ANOMALY_LABEL, attack))
    return runs


def write_labels(path: Path, runs: Sequence[LabelRun]) -> None:
    """Write the labels CSV (header ``LABELS_HEADER``, one row per run)."""
    with path.open("w", newline="", encoding="ascii") as labels_file:
        writer = csv.writer(labels_file, lineterminator="\n")
        writer.writerow(LABELS_HEADER)
        writer.writerows(runs)


# --------------------------------------------------------------------------- run


def positive_seconds(text: str) -> float:
    """Parse a duration option that must be greater than zero."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds greater than 0, got {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    """Parse a duration option that may be zero."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds of at least 0, got {text!r}")
    return value


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "demo",
                        help="folder for demo.pcapng and demo.labels.csv (default: samples/demo)")
    parser.add_argument("--benign-seconds", type=positive_seconds, default=DEFAULT_BENIGN_SECONDS,
                        help="length of the benign phase before the attack, in seconds (default: 60)")
    parser.add_argument("--attack-seconds", type=positive_seconds, default=DEFAULT_ATTACK_SECONDS,
                        help="length of the attack phase, in seconds. The scan takes 60%% of it and "
                             "the connection burst the rest (default: 10)")
    parser.add_argument("--tail-seconds", type=non_negative_seconds, default=DEFAULT_TAIL_SECONDS,
                        help="length of the benign phase after the attack, in seconds (default: 10)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the random generators of the hosts and the scan order (default: 7)")
    parser.add_argument("--scan-first-port", type=int, default=DEFAULT_SCAN_FIRST_PORT,
                        help="first TCP port of the scanned range on 127.0.0.1 (default: 30000)")
    parser.add_argument("--scan-port-count", type=int, default=DEFAULT_SCAN_PORT_COUNT,
                        help="number of consecutive ports scanned, 1 to 5000 (default: 1000)")
    parser.add_argument("--burst-connections", type=int, default=DEFAULT_BURST_CONNECTIONS,
                        help="number of connections in the connection burst, 1 to 2000 (default: 200)")
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    arguments = parser.parse_args(argv)

    if not 1 <= arguments.scan_port_count <= 5000:
        parser.error(f"--scan-port-count must be between 1 and 5000, got {arguments.scan_port_count}")
    if not 1024 <= arguments.scan_first_port <= 65536 - arguments.scan_port_count:
        parser.error(f"--scan-first-port must be between 1024 and {65536 - arguments.scan_port_count} "
                     f"for {arguments.scan_port_count} ports, got {arguments.scan_first_port}")
    if not 1 <= arguments.burst_connections <= 2000:
        parser.error(f"--burst-connections must be between 1 and 2000, got {arguments.burst_connections}")
    return arguments


def wait_phase(progress: Progress, description: str, duration_s: float, stop_event: threading.Event) -> None:
    """Show a progress bar for a phase of ``duration_s`` seconds and return when it ends."""
    task = progress.add_task(description, total=round(duration_s))
    start = time.monotonic()
    while (elapsed_s := time.monotonic() - start) < duration_s:
        progress.update(task, completed=min(round(duration_s), int(elapsed_s)))
        if stop_event.wait(min(0.25, duration_s - elapsed_s)):
            break
    progress.update(task, completed=round(duration_s))


def choose_scan_ports(scan_ports: range, endpoints: ServiceEndpoints, rng: random.Random) -> list[int]:
    """Return the scan range in a seeded random order, without ports another program listens on.

    Raises:
        RuntimeError: a demo server port lies inside the scan range, which would make the
            port scan and benign traffic share a server port and mislabel frames.
    """
    own_ports = {endpoints.http_port, endpoints.echo_port}
    inside = sorted(port for port in own_ports if port in scan_ports)
    if inside:
        raise RuntimeError(f"demo server port(s) {inside} fall inside the scan range "
                           f"{scan_ports.start}-{scan_ports.stop - 1}; choose another --scan-first-port")

    foreign = sorted(port for port in find_listening_tcp_ports() if port in scan_ports)
    if foreign:
        logger.warning("skipping %d scan port(s) where another program listens: %s", len(foreign), foreign)
    ports = [port for port in scan_ports if port not in foreign]
    rng.shuffle(ports)
    return ports


def run_scenario(arguments: argparse.Namespace, endpoints: ServiceEndpoints, ports_to_scan: list[int],
                 hosts: list[BenignHost], stop_event: threading.Event, console: Console) -> None:
    """Start the benign hosts and run the benign, attack and tail phases with progress bars.

    The hosts are appended to ``hosts`` as they are created, so the caller can stop and
    join them even when a phase is interrupted.
    """
    progress_columns = (TextColumn("{task.description:<26}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*progress_columns, console=console) as progress:
        for index, address in enumerate(BENIGN_HOST_ADDRESSES):
            rng = random.Random(arguments.seed * 1000 + index + 1)
            hosts.append(BenignHost(address, endpoints, rng, stop_event))
        for host in hosts:
            host.start()

        wait_phase(progress, "benign (s)", arguments.benign_seconds, stop_event)

        attack_start = time.monotonic()
        scan_outcomes = run_port_scan(ports_to_scan, arguments.attack_seconds * SCAN_SHARE_OF_ATTACK,
                                      progress, stop_event)
        burst_outcomes = run_connection_burst(endpoints.http_port, arguments.burst_connections,
                                              arguments.attack_seconds * (1 - SCAN_SHARE_OF_ATTACK),
                                              progress, stop_event)
        remaining_attack_s = arguments.attack_seconds - (time.monotonic() - attack_start)
        if remaining_attack_s > 0:
            stop_event.wait(remaining_attack_s)

        if arguments.tail_seconds > 0:
            wait_phase(progress, "tail (s)", arguments.tail_seconds, stop_event)

    logger.info("port scan outcomes: %s", dict(scan_outcomes))
    logger.info("connection burst outcomes: %s", dict(burst_outcomes))


def label_capture(capture_path: Path, labels_path: Path, http_port: int, scan_ports: range) -> None:
    """Read ``capture_path`` back with tshark, write its labels and log the frame counts."""
    frames = read_frame_endpoints(capture_path)
    frame_attacks = [(frame.frame_number, classify_frame_attack(frame, http_port, scan_ports))
                     for frame in frames]
    runs = build_label_runs(frame_attacks)
    write_labels(labels_path, runs)

    counts = Counter(attack or "normal" for _, attack in frame_attacks)
    logger.info("%d frames (normal %d, port-scan %d, connection-burst %d) in %d label rows",
                len(frames), counts["normal"], counts[PORT_SCAN_ATTACK],
                counts[CONNECTION_BURST_ATTACK], len(runs))


def record(arguments: argparse.Namespace, console: Console) -> None:
    """Record the capture and write the labels, moving both into ``--out-dir`` only on success."""
    out_dir: Path = arguments.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    capture_path = out_dir / CAPTURE_FILE_NAME
    labels_path = out_dir / LABELS_FILE_NAME
    partial_capture_path = out_dir / (CAPTURE_FILE_NAME + ".partial")
    partial_labels_path = out_dir / (LABELS_FILE_NAME + ".partial")
    scan_ports = range(arguments.scan_first_port, arguments.scan_first_port + arguments.scan_port_count)
    stop_event = threading.Event()
    hosts: list[BenignHost] = []

    try:
        with DemoServers() as servers:
            assert servers.endpoints is not None
            endpoints = servers.endpoints
            ports_to_scan = choose_scan_ports(scan_ports, endpoints, random.Random(arguments.seed))
            capture_filter = build_capture_filter(endpoints, scan_ports)

            with LoopbackCapture(partial_capture_path, capture_filter) as capture:
                try:
                    run_scenario(arguments, endpoints, ports_to_scan, hosts, stop_event, console)
                finally:
                    stop_event.set()
                    for host in hosts:
                        host.join()
                    time.sleep(DRAIN_BEFORE_STOP_S)
                    capture.stop()

        for host in hosts:
            logger.info("host %s: actions %s, errors %s", host.address,
                        dict(host.action_counts), dict(host.error_counts) or "none")

        label_capture(partial_capture_path, partial_labels_path, endpoints.http_port, scan_ports)
        # dumpcap creates its file readable by its owner only.
        partial_capture_path.chmod(0o644)
        os.replace(partial_capture_path, capture_path)
        os.replace(partial_labels_path, labels_path)
        logger.info("wrote %s and %s", capture_path, labels_path)
    finally:
        stop_event.set()
        for path in (partial_capture_path, partial_labels_path):
            path.unlink(missing_ok=True)


def _raise_keyboard_interrupt(signal_number: int, _frame: object) -> None:
    """Turn SIGTERM into the same clean stop as Ctrl-C."""
    raise KeyboardInterrupt(f"signal {signal_number}")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    console = Console(stderr=True)
    logging.basicConfig(level=logging.DEBUG if arguments.verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    previous_sigterm_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        record(arguments, console)
    except KeyboardInterrupt:
        logger.error("interrupted: servers, hosts and dumpcap are stopped, and no output was written")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm_handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
