"""Slow clients are cut off: headers or a body that stall or trickle get 408 (the API's error shape)
and their connection is closed; prompt clients, and kept-alive connections, are not affected.
Raw sockets on loopback against a live server with short deadlines."""

import json
import select
import socket
import time

import pytest
from server_process import DEFAULT_MODEL, default_model_entry

HEADER_TIMEOUT, BODY_TIMEOUT = 2.0, 2.0
CHAT = json.dumps({"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}],
                   "max_tokens": 1}).encode()


@pytest.fixture(scope="module")
def slow_server(start_server):
    return start_server(models=[default_model_entry(parallel=1, max_queue=2, threads=1)], env={
        "PLATEFORME_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "PLATEFORME_BODY_TIMEOUT": str(BODY_TIMEOUT)})


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def trickle(sock: socket.socket, data: bytes, per_second: int = 2, limit_s: float = 15) -> tuple[bytes, float]:
    """Send `data` at `per_second` bytes/s until the server answers or closes; (its answer, seconds)."""
    started, answer = time.monotonic(), b""
    for i in range(0, len(data), per_second):
        try:
            sock.sendall(data[i:i + per_second])
        except OSError:  # closed by the server
            break
        if select.select([sock], [], [], 1.0)[0] or time.monotonic() - started > limit_s:
            break
    return read_to_close(sock, started)


def read_to_close(sock: socket.socket, started: float, limit_s: float = 15) -> tuple[bytes, float]:
    answer = b""
    sock.settimeout(limit_s)
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer, time.monotonic() - started


def error_of(answer: bytes) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"connection: close" in head.lower()
    return json.loads(body)


def test_headers_sent_two_bytes_a_second_get_408(slow_server):
    with connect(slow_server) as sock:
        answer, took = trickle(sock, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 60 + b"\r\n\r\n")
    assert took < HEADER_TIMEOUT + 2, f"held for {took:.1f}s"
    error = error_of(answer)
    assert error["object"] == "error" and error["code"] == "408" and error["type"] == "request_timeout"


def test_a_body_shorter_than_declared_gets_408(slow_server):
    with connect(slow_server) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 10\r\n\r\n{\"mo")
        answer, took = read_to_close(sock, time.monotonic())
    assert took < BODY_TIMEOUT + 2, f"held for {took:.1f}s"
    assert error_of(answer)["code"] == "408"
    assert b"x-request-id" in answer.lower()  # answered by the app, like every API error


def test_a_body_sent_two_bytes_a_second_gets_408(slow_server):
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(CHAT))
    with connect(slow_server) as sock:
        sock.sendall(head)
        answer, took = trickle(sock, CHAT)
    assert took < BODY_TIMEOUT + 3, f"held for {took:.1f}s"
    assert error_of(answer)["code"] == "408"


def test_kept_alive_connections_serve_requests_with_pauses_then_close_when_silent(slow_server):
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(CHAT))
    with connect(slow_server) as sock:
        for pause in (0.0, HEADER_TIMEOUT * 0.6):  # the second request comes after a pause, same connection
            time.sleep(pause)
            sock.sendall(request + CHAT[:20])
            time.sleep(BODY_TIMEOUT * 0.6)  # a pause within the body, shorter than the deadline
            sock.sendall(CHAT[20:])
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
                chunk = sock.recv(65536)
                assert chunk, f"connection closed: {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["usage"]["completion_tokens"] == 1
        answer, took = read_to_close(sock, time.monotonic())  # then nothing more: closed, silently
    assert answer == b"" and HEADER_TIMEOUT - 0.5 < took < HEADER_TIMEOUT + 1.5
    with connect(slow_server) as sock:  # a connection that never sends anything, too
        answer, took = read_to_close(sock, time.monotonic())
    assert answer == b"" and HEADER_TIMEOUT - 0.5 < took < HEADER_TIMEOUT + 1.5


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30
