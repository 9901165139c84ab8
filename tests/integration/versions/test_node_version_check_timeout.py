"""node_version_check against an API server that answers too slowly or cuts its answer short.

The faults are injected into the API double's HTTP handler (test doubles of a misbehaving server
or proxy): one trickles its response a byte at a time, one closes the connection mid-body.
"""
import json
import time

from tests.lab import api_double
from tests.lab.ansible_run import run_module


class FaultyHandler(api_double._Handler):
    """The double's handler, with the body sent by ``send_body(data)`` after headers announcing ``length(data)``."""

    def _send(self, code, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(self.length(data)))
        self.end_headers()
        self.send_body(data)

    def length(self, data):
        return len(data)


class TricklingHandler(FaultyHandler):
    """One byte of the body per second: no socket read ever times out."""

    def send_body(self, data):
        try:
            for index in range(len(data)):
                self.wfile.write(data[index:index + 1])
                self.wfile.flush()
                time.sleep(1)
        except OSError:  # the client gave up
            self.close_connection = True


class ShortBodyHandler(FaultyHandler):
    """Announces 100 more bytes than it sends, then closes the connection."""

    def length(self, data):
        return len(data) + 100

    def send_body(self, data):
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True


def serve_with(api, handler):
    api._server.RequestHandlerClass = handler
    return api


def assert_clean(result):
    assert result["failed"], result
    assert "Traceback" not in result["_stdout"] and "MODULE FAILURE" not in result["_stdout"], result["_stdout"]


def test_trickling_server_is_given_up_on_at_the_deadline(api_for):
    api = serve_with(api_for("seed"), TricklingHandler)
    started = time.monotonic()
    result = run_module("node_version_check", {"kubeconfig": api.kubeconfig, "timeout": 3})
    elapsed = time.monotonic() - started
    assert_clean(result)
    assert "did not complete the reads within the 3 s timeout" in result["msg"], result["msg"]
    assert api.url in result["msg"]
    # ansible's own start-up is part of the elapsed time; the body alone would take minutes.
    assert elapsed < 3 + 20, elapsed


def test_cut_short_body_is_reported_as_such(api_for):
    api = serve_with(api_for("seed"), ShortBodyHandler)
    result = run_module("node_version_check", {"kubeconfig": api.kubeconfig})
    assert_clean(result)
    assert "closed the connection before sending the whole response" in result["msg"], result["msg"]
    assert "100 more expected" in result["msg"], result["msg"]


def test_timeout_must_be_positive(api_for):
    api = api_for("seed")
    result = run_module("node_version_check", {"kubeconfig": api.kubeconfig, "timeout": 0})
    assert_clean(result)
    assert "timeout must be a positive number of seconds" in result["msg"]
