# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API access shared by every API module (options documented in doc_fragments/k8s_auth).

The options and their environment fallbacks are kubernetes.core's, so a playbook that already
talks to the cluster with kubernetes.core passes the same values here.  Every failure an operator
can fix (missing or malformed kubeconfig, unknown context, unreachable API server, TLS or
credential rejection) becomes a typed error from _errors.py whose message names the file or host
and what to do.  Tokens and keys never appear in a message: the kubeconfig is parsed here rather
than by the client so that YAML errors are reported by position only, never by content.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import json
import os
import re
import signal
import threading
import time
import traceback
from http.client import HTTPException, IncompleteRead

from ansible.module_utils.basic import env_fallback

from ansible_collections.cplane.kubeadm.plugins.module_utils._files import read_input_file
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import (
    ConnectionFailure, InputError, OperationFailed)
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeconfig as kubeconfig_reader
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki.kubeadm import KUBECONFIG_DIR

try:
    import yaml
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader
except Exception:  # pragma: no cover - reported through missing_required_lib
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

K8S_AUTH_ARGS = dict(
    kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    host=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_HOST"])),
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["K8S_AUTH_API_KEY"])),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"], fallback=(env_fallback, ["K8S_AUTH_SSL_CA_CERT"])),
    client_cert=dict(type="path", aliases=["cert_file"], fallback=(env_fallback, ["K8S_AUTH_CERT_FILE"])),
    client_key=dict(type="path", aliases=["key_file"], no_log=False, fallback=(env_fallback, ["K8S_AUTH_KEY_FILE"])),
    validate_certs=dict(type="bool", aliases=["verify_ssl"], fallback=(env_fallback, ["K8S_AUTH_VERIFY_SSL"])),
)

# Where a kubeconfig is looked for when neither kubeconfig nor host is given, in this order.
ADMIN_KUBECONFIG = os.path.join(KUBECONFIG_DIR, "admin.conf")
DEFAULT_KUBECONFIGS = ("~/.kube/config", ADMIN_KUBECONFIG)

# Seconds: connecting (TLS included) and waiting for one response.  Lists are paginated, so no
# single response of a healthy server takes long.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60

_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/=_-]{40,}")


def k8s_argument_spec(**module_args):
    """The auth options plus the module's own."""
    spec = dict(K8S_AUTH_ARGS)
    spec.update(module_args)
    return spec


def auth_params(params):
    """The auth options out of ``module.params``, as keyword arguments for connect()."""
    return {name: params.get(name) for name in K8S_AUTH_ARGS}


def redact(text, secrets=()):
    """``text`` without the given secrets and without anything that looks like key or token material."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return _LONG_BASE64.sub("<redacted>", text)


def find_kubeconfig(kubeconfig=None):
    """The kubeconfig to use: the option, else $KUBECONFIG (first entry), else the defaults in order."""
    if kubeconfig:
        return kubeconfig
    from_env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if from_env:
        return from_env
    for candidate in DEFAULT_KUBECONFIGS:
        path = os.path.expanduser(candidate)
        if os.path.exists(path):
            return path
    raise InputError("no kubeconfig found: none given, KUBECONFIG is unset and neither %s exists. Pass kubeconfig= "
                     "(kubeadm writes %s on control-plane nodes; run with become to read it) or host= with credentials."
                     % (" nor ".join(DEFAULT_KUBECONFIGS), ADMIN_KUBECONFIG))


def read_kubeconfig(path):
    """Parse ``path`` into a dict; every way it can be wrong becomes an InputError naming it."""
    if not os.path.exists(path):
        raise InputError("kubeconfig %s does not exist. Pass kubeconfig= the path of an admin kubeconfig (kubeadm writes "
                         "%s on control-plane nodes) or host= with credentials." % (path, ADMIN_KUBECONFIG))
    raw = read_input_file(path, "kubeconfig", "Run the task with become, or point kubeconfig= to a readable copy.")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise InputError("kubeconfig %s is not valid YAML%s (%s). Fix the file or regenerate it (kubeadm kubeconfig user, "
                         "or kubeadm init phase kubeconfig admin on a control-plane node)." % (path, where, problem))
    if not isinstance(data, dict) or not data.get("contexts") and not data.get("clusters"):
        raise InputError("kubeconfig %s holds no clusters or contexts; it is not a kubeconfig. Point kubeconfig= to one "
                         "(kubeadm writes %s)." % (path, ADMIN_KUBECONFIG))
    return data


def _check_context(path, data, context):
    # The client silently connects without credentials when the context's user is missing; the
    # shared reader refuses that (and every other inconsistency) with a message naming the file.
    return kubeconfig_reader.resolve(data, path, context)["context"]


def _require_file(option, path):
    if path and not os.path.exists(path):
        raise InputError("%s %s does not exist; pass the path of an existing PEM file." % (option, path))


def build_configuration(kubeconfig=None, context=None, host=None, api_key=None, ca_cert=None, client_cert=None,
                        client_key=None, validate_certs=None):
    """A kubernetes ``Configuration`` from the auth options; returns (configuration, source).

    ``source`` names where the connection settings came from, for messages.
    """
    configuration = k8s_client.Configuration()
    source = "the host option"
    if kubeconfig or not host:
        path = find_kubeconfig(kubeconfig)
        data = read_kubeconfig(path)
        active = _check_context(path, data, context)
        try:
            loader = KubeConfigLoader(config_dict=data, active_context=active,
                                      config_base_path=os.path.dirname(os.path.abspath(path)))
            loader.load_and_set(configuration)
        except (ConfigException, binascii.Error, ValueError, TypeError, KeyError, AttributeError) as error:
            raise InputError("kubeconfig %s (context %s) cannot be used: %s. Fix the file or regenerate it (kubeadm kubeconfig "
                             "user)." % (path, active, redact(str(error) or type(error).__name__, [api_key])))
        source = "kubeconfig %s (context %s)" % (path, active)
    for option, value in (("ca_cert", ca_cert), ("client_cert", client_cert), ("client_key", client_key)):
        _require_file(option, value)
    if host:
        configuration.host = host.rstrip("/")
    if api_key:
        configuration.api_key = {"BearerToken": "Bearer " + api_key}
    if ca_cert:
        configuration.ssl_ca_cert = ca_cert
    if client_cert:
        configuration.cert_file = client_cert
    if client_key:
        configuration.key_file = client_key
    if validate_certs is not None:
        configuration.verify_ssl = validate_certs
    if not configuration.verify_ssl:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if not configuration.host or configuration.host == "http://localhost":
        raise InputError("no API server address: %s names no server. Set the cluster's server in the kubeconfig or pass host=."
                         % source)
    # Errors are reported at once: retrying a refused connection or a TLS rejection only delays the message.
    configuration.retries = 0
    return configuration, source


def connect(timeout=None, **auth):
    """A KubeClient for the auth options (see K8S_AUTH_ARGS); nothing is sent until the first call.

    ``timeout``: seconds from now that all calls through the client together may take (None: no limit).
    """
    configuration, source = build_configuration(**auth)
    return KubeClient(k8s_client.ApiClient(configuration), configuration.host, source, [auth.get("api_key")],
                      timeout=timeout)


class _DeadlinePassed(BaseException):
    """Raised by the alarm handler; a BaseException so that no library's ``except Exception`` swallows it."""


class Deadline(object):
    """One overall time limit for a series of calls.

    Socket timeouts bound each connect and each read, not a whole response: a server that sends a
    byte every few seconds never trips a read timeout, and held a check for 212 s.  So, besides
    capping the socket timeouts at the time left, an interval timer (SIGALRM) interrupts whatever
    blocks when the time is up.  Signals reach only the main thread, where Ansible runs modules;
    elsewhere only the socket caps apply.
    """

    def __init__(self, seconds, clock=time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self.end = None if seconds is None else clock() + seconds

    def remaining(self):
        return None if self.end is None else self.end - self._clock()

    def cap(self, seconds):
        remaining = self.remaining()
        return seconds if remaining is None else max(min(seconds, remaining), 0.001)

    def run(self, expired, function, *args, **kwargs):
        """``function(*args, **kwargs)``, or ``raise expired()`` when the deadline passes first."""
        remaining = self.remaining()
        if remaining is None:
            return function(*args, **kwargs)
        if remaining <= 0:
            raise expired()
        if threading.current_thread() is not threading.main_thread():
            return function(*args, **kwargs)

        def alarm(signum, frame):
            raise _DeadlinePassed()

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, remaining)
        try:
            return function(*args, **kwargs)
        except _DeadlinePassed:
            raise expired()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _ssl_reason(error):
    text = str(error)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "Hostname mismatch",
                   "alert unknown ca", "alert certificate required", "alert bad certificate",
                   "certificate expired", "alert certificate expired", "PEM lib", "KEY_VALUES_MISMATCH",
                   "wrong version number", "NO_START_LINE", "NO_CERTIFICATE_OR_CRL_FOUND", "NO_CERTIFICATE_ASSIGNED"):
        if marker.lower() in text.lower():
            return marker
    return None


class KubeClient(object):
    """An ApiClient plus the translation of its failures into the collection's typed errors."""

    def __init__(self, api_client, host, source, secrets=(), timeout=None):
        self.api_client = api_client
        self.host = host
        self.source = source
        self._secrets = [s for s in secrets if s]
        self.deadline = Deadline(timeout)

    def close(self):
        try:
            self.api_client.close()
        except Exception:  # pragma: no cover - closing a pool must never mask the real result
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def get(self, what, path, **query):
        """GET ``path`` with ``query`` (None values left out); the decoded JSON body as plain dicts.

        Modules read through this rather than the generated API classes: importing CoreV1Api
        alone builds thousands of pydantic validators (about a second of CPU), and building
        the client's models for thousands of nodes costs far more time and memory than the few
        fields a check needs (docs/benchmarks/node_version_check.md).
        """
        return self.request(what, "GET", path, **query)

    def request(self, what, method, path, body=None, forbidden_hint=None, **query):
        """``method`` on ``path`` with the JSON ``body`` and ``query``; the decoded JSON response as plain dicts.

        ``forbidden_hint`` replaces the default advice of a 403 (read access to nodes and pods) with
        what this request needs.  A non-2xx answer raises OperationFailed/ConnectionFailure with
        ``.status`` set, so callers can handle one status (409 Conflict, 404 Not Found).
        """
        params = [(key, value) for key, value in sorted(query.items()) if value is not None]
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        method, url, headers, body, post = self.api_client.param_serialize(
            method, path, query_params=params, header_params=headers, body=body, auth_settings=["BearerToken"])

        def request_and_read(**kwargs):
            # The body is read here, inside call(): a slow or cut-short body is the request's failure too.
            response = self.api_client.call_api(method, url, header_params=headers, body=body, post_params=post, **kwargs)
            return response, response.read()

        response, data = self.call(what, request_and_read)
        if not 200 <= response.status < 300:
            raise self._status_error(what, response.status, response.reason, data, forbidden_hint)
        try:
            return json.loads(data)
        except ValueError:
            raise OperationFailed("%s: the API server at %s sent a body that is not JSON; is %s a Kubernetes API server?"
                                  % (what, self.host, self.host))

    def call(self, what, function, *args, **kwargs):
        """``function(*args, **kwargs)`` within the deadline; failures become ConnectionFailure/OperationFailed naming ``what``."""
        kwargs.setdefault("_request_timeout", (self.deadline.cap(CONNECT_TIMEOUT), self.deadline.cap(READ_TIMEOUT)))
        try:
            return self.deadline.run(lambda: self._deadline_error(what), function, *args, **kwargs)
        except ApiException as error:
            raise self._status_error(what, error.status, error.reason, error.body)
        except urllib3.exceptions.HTTPError as error:
            raise self._transport_error(what, error)
        except (OSError, ValueError, HTTPException) as error:
            # A body cut short is an HTTPException (IncompleteRead); ssl.SSLError is an OSError (a client key that
            # does not load, a CA file that is not PEM).
            raise self._transport_error(what, error)

    def _deadline_error(self, what):
        return ConnectionFailure("%s: the API server at %s did not complete the reads within the %s s timeout (it may be "
                                 "overloaded, or something between answers too slowly). Check kube-apiserver's health and the "
                                 "address in %s, or raise timeout." % (what, self.host, _seconds(self.deadline.seconds), self.source))

    def _status_error(self, what, status, reason, body, forbidden_hint=None):
        error = self._status_failure(what, status, reason, body, forbidden_hint)
        error.status = status  # for callers that handle one status (410: restart a paginated list)
        return error

    def _status_failure(self, what, status, reason, body, forbidden_hint=None):
        message = ""
        try:
            message = json.loads(body or "{}").get("message", "")
        except (ValueError, AttributeError, TypeError):
            message = reason or ""
        message = redact(message, self._secrets)
        if status == 401:
            return ConnectionFailure("%s: the API server at %s rejected the credentials from %s (401 Unauthorized). The client "
                                     "certificate may be expired or from another cluster, or the token revoked: renew it "
                                     "(kubeadm certs renew admin.conf) or pass valid credentials." % (what, self.host, self.source))
        if status == 403:
            return OperationFailed("%s: forbidden (403) for the user in %s: %s. %s" % (
                what, self.source, message, forbidden_hint or "Use a kubeconfig whose user may read nodes and kube-system "
                "pods (kubeadm's admin.conf)."))
        return OperationFailed("%s: the API server at %s answered %s %s%s." % (
            what, self.host, status, reason or "", (": " + message) if message else ""))

    def _transport_error(self, what, error):
        reason = getattr(error, "reason", None) or error
        text = redact(str(reason), self._secrets)
        marker = _ssl_reason(text)
        if marker == "NO_CERTIFICATE_OR_CRL_FOUND":
            return InputError("%s: the CA bundle from %s holds no PEM certificate. Point ca_cert (or the kubeconfig's "
                              "certificate-authority) to the cluster CA (kubeadm: %s)."
                              % (what, self.source, os.path.join(KUBECONFIG_DIR, "pki/ca.crt")))
        if marker in ("PEM lib", "KEY_VALUES_MISMATCH", "NO_START_LINE", "NO_CERTIFICATE_ASSIGNED"):
            return InputError("%s: the client certificate or key from %s could not be loaded (%s): the files are not PEM or "
                              "do not belong together. Regenerate the kubeconfig (kubeadm kubeconfig user)."
                              % (what, self.source, marker))
        if marker in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "Hostname mismatch"):
            detail = "its certificate does not match the address" if marker == "Hostname mismatch" else \
                "its certificate is not signed by the CA that %s trusts (certificate-authority-data / ca_cert)" % self.source
            return ConnectionFailure("%s: TLS to the API server at %s failed: %s. Use the cluster's CA (kubeadm: %s) or the "
                                     "right server address." % (what, self.host, detail, os.path.join(KUBECONFIG_DIR, "pki/ca.crt")))
        if marker:
            return ConnectionFailure("%s: the API server at %s refused the TLS client certificate from %s (%s). The certificate "
                                     "is missing, expired or signed by another CA: renew or regenerate it (kubeadm certs renew "
                                     "admin.conf)." % (what, self.host, self.source, marker))
        if "EOF occurred in violation of protocol" in text or "UNEXPECTED_EOF" in text:
            return ConnectionFailure("%s: the API server at %s closed the TLS connection during the handshake: it requires a client "
                                     "certificate signed by the cluster CA, and %s gives none it accepts. Use a kubeconfig with a "
                                     "client certificate (kubeadm's admin.conf) or pass client_cert/client_key or api_key."
                                     % (what, self.host, self.source))
        if isinstance(reason, IncompleteRead) or "IncompleteRead" in text:
            return ConnectionFailure("%s: the API server at %s closed the connection before sending the whole response "
                                     "(%s). It may be restarting, or a proxy in between cut the response; check kube-apiserver "
                                     "and run again." % (what, self.host, _incomplete_detail(reason)))
        if isinstance(reason, urllib3.exceptions.NewConnectionError) or "refused" in text.lower():
            short = text.split(": ")[-1]
            return ConnectionFailure("%s: cannot reach the API server at %s (%s). Check that kube-apiserver is running on the "
                                     "control plane (crictl ps --name kube-apiserver) and that the server address in %s is right."
                                     % (what, self.host, short, self.source))
        if isinstance(reason, urllib3.exceptions.ProtocolError) or "Connection aborted" in text or "reset by peer" in text:
            return ConnectionFailure("%s: the API server at %s closed the connection during the request (%s); it may have "
                                     "refused the client certificate from %s, or be restarting. Check the certificate and "
                                     "kube-apiserver's state." % (what, self.host, text, self.source))
        if "timed out" in text.lower() or isinstance(reason, urllib3.exceptions.TimeoutError):
            return ConnectionFailure("%s: the API server at %s did not answer in time (%s s to connect, %s s per response). Check "
                                     "that kube-apiserver is running and healthy and that the address in %s is right."
                                     % (what, self.host, CONNECT_TIMEOUT, READ_TIMEOUT, self.source))
        return ConnectionFailure("%s: cannot reach the API server at %s (%s). Check that kube-apiserver is running on the "
                                 "control plane (crictl ps --name kube-apiserver) and that the server address in %s is right."
                                 % (what, self.host, text, self.source))


def _seconds(value):
    return ("%g" % value) if value is not None else "?"


def _incomplete_detail(reason):
    """``N bytes received, M more expected`` out of an IncompleteRead (possibly wrapped in a ProtocolError)."""
    for candidate in [reason] + list(getattr(reason, "args", ())):
        if isinstance(candidate, IncompleteRead):
            partial, expected = candidate.partial, candidate.expected
            got = partial if isinstance(partial, int) else len(partial or b"")
            return "%d bytes received, %s more expected" % (got, expected)
    return "IncompleteRead"
