"""What the tests' fault-injecting HTTP proxies share (the S3 one of
tests/test_objectstore.py, the GCS/Azure one of tests/test_objectstore_cloud.py):
a free loopback port, an injected error answer, and the relay of one request
to the real server behind the proxy. Each proxy keeps its own fault rules."""

from __future__ import annotations

import http.client
import socket
from http.server import BaseHTTPRequestHandler

#: Hop-by-hop and per-connection headers the proxy sets itself (or leaves to its own server).
_NOT_RELAYED = ("transfer-encoding", "connection", "keep-alive", "content-length", "server", "date")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer(handler: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str = "application/xml") -> None:
    """Send an injected error answer instead of relaying the request."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


def relay(handler: BaseHTTPRequestHandler, upstream_port: int, body: bytes, host: str = "127.0.0.1") -> None:
    """Forward ``handler``'s request (its ``body`` already read) to the server behind the proxy and send back its answer."""
    conn = http.client.HTTPConnection(host, upstream_port, timeout=60)
    conn.request(handler.command, handler.path, body=body or None, headers=dict(handler.headers))
    response = conn.getresponse()
    data = response.read()
    handler.send_response(response.status)
    for k, v in response.getheaders():
        if k.lower() not in _NOT_RELAYED:
            handler.send_header(k, v)
    # a HEAD's Content-Length is the object's size, not its (empty) body's
    handler.send_header("Content-Length", response.getheader("Content-Length", "0") if handler.command == "HEAD" else str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
    conn.close()
