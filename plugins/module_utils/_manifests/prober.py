# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one httpGet or tcpSocket probe the way kubelet does.

Shared by the static_pod_probe module (``measure``) and the lab's kubelet double, so that both
judge a probe by the same rules: kubelet's HTTP prober skips certificate verification for
HTTPS, counts any status 200-399 as success, sends ``User-Agent: kube-probe/<version>`` and
``Accept: */*``, reads at most 10 KiB of body, and fails a probe that exceeds timeoutSeconds.
A tcpSocket probe succeeds when the connection opens within the timeout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import ssl
import time

try:
    import http.client as http_client
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    http_client = None

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError

HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
USER_AGENT = "kube-probe/1.31"
MAX_BODY = 10 * 1024
# kubelet's defaults for fields a manifest leaves out (pkg/apis/core/v1/defaults.go).
PROBE_DEFAULTS = dict(initialDelaySeconds=0, periodSeconds=10, timeoutSeconds=1, successThreshold=1, failureThreshold=3)


class ProbeOutcome(object):
    """The result of one probe run: ``success``, ``latency`` in seconds, ``detail`` for a human."""

    def __init__(self, success, latency, detail, timed_out=False):
        self.success = success
        self.latency = latency
        self.detail = detail
        self.timed_out = timed_out

    def as_dict(self):
        return dict(success=self.success, latency=round(self.latency, 6), detail=self.detail, timed_out=self.timed_out)


def handler_of(probe):
    """Which of kubelet's handlers the probe uses, or None when it names none."""
    found = [name for name in HANDLERS if isinstance(probe, dict) and name in probe]
    return found[0] if len(found) == 1 else None


def timing(probe):
    """The probe's timing fields with kubelet's defaults filled in."""
    values = dict(PROBE_DEFAULTS)
    for key in PROBE_DEFAULTS:
        if isinstance(probe, dict) and probe.get(key) is not None:
            values[key] = int(probe[key])
    return values


def resolve_port(port, container=None):
    """A numeric port, resolving a named port against the container's ``ports`` list."""
    if isinstance(port, int) and not isinstance(port, bool):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for entry in (container or {}).get("ports") or []:
        if entry.get("name") == port and entry.get("containerPort"):
            return int(entry["containerPort"])
    raise InputError("probe port %r is neither a number nor a named port of the container" % (port,))


def _host(action, default_host):
    host = action.get("host") or default_host
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def describe_target(probe, container=None, default_host="127.0.0.1"):
    """A one-line human form of where the probe goes (``https://127.0.0.1:6443/livez``)."""
    kind = handler_of(probe)
    if kind == "httpGet":
        action = probe["httpGet"]
        return "%s://%s:%s%s" % (action.get("scheme", "HTTP").lower(), _host(action, default_host),
                                 action.get("port"), action.get("path", "/"))
    if kind == "tcpSocket":
        action = probe["tcpSocket"]
        return "tcp://%s:%s" % (_host(action, default_host), action.get("port"))
    if kind == "exec":
        return "exec: %s" % " ".join(str(part) for part in probe["exec"].get("command") or [])
    if kind == "grpc":
        return "grpc://%s:%s" % (default_host, probe["grpc"].get("port"))
    return "(no handler)"


def run_http_probe(action, timeout, container=None, default_host="127.0.0.1"):
    """One kubelet httpGet probe against ``action`` (the probe's httpGet mapping)."""
    host = _host(action, default_host)
    port = resolve_port(action.get("port"), container)
    scheme = str(action.get("scheme") or "HTTP").upper()
    path = action.get("path") or "/"
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[header.get("name")] = header.get("value", "")
    started = time.monotonic()
    try:
        if scheme == "HTTPS":
            # kubelet does not verify the serving certificate of a probed endpoint.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http_client.HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            conn = http_client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read(MAX_BODY)
        finally:
            conn.close()
    except socket.timeout:
        return ProbeOutcome(False, time.monotonic() - started, "timeout after %ss" % timeout, timed_out=True)
    except (OSError, http_client.HTTPException) as exc:
        return ProbeOutcome(False, time.monotonic() - started, "%s: %s" % (type(exc).__name__, exc))
    latency = time.monotonic() - started
    if latency > timeout:
        return ProbeOutcome(False, latency, "timeout after %ss" % timeout, timed_out=True)
    text = body.decode("utf-8", "replace").strip()
    if 200 <= response.status < 400:
        return ProbeOutcome(True, latency, "HTTP %d" % response.status)
    return ProbeOutcome(False, latency, "HTTP %d: %s" % (response.status, text[:200]))


def run_tcp_probe(action, timeout, container=None, default_host="127.0.0.1"):
    """One kubelet tcpSocket probe: success when the connection opens in time."""
    host = _host(action, default_host)
    port = resolve_port(action.get("port"), container)
    started = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.close()
    except socket.timeout:
        return ProbeOutcome(False, time.monotonic() - started, "timeout after %ss" % timeout, timed_out=True)
    except OSError as exc:
        return ProbeOutcome(False, time.monotonic() - started, "%s: %s" % (type(exc).__name__, exc))
    return ProbeOutcome(True, time.monotonic() - started, "connected")


def run_network_probe(probe, timeout=None, container=None, default_host="127.0.0.1"):
    """Run an httpGet or tcpSocket probe once; ``timeout`` defaults to the probe's timeoutSeconds."""
    if timeout is None:
        timeout = timing(probe)["timeoutSeconds"]
    kind = handler_of(probe)
    if kind == "httpGet":
        return run_http_probe(probe["httpGet"], timeout, container, default_host)
    if kind == "tcpSocket":
        return run_tcp_probe(probe["tcpSocket"], timeout, container, default_host)
    raise InputError("only httpGet and tcpSocket probes run over the network; this one is %s" % (kind or "empty"))
