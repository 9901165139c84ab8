# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS connections to etcd members through python-etcd3, with the workarounds it needs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import traceback

# python-etcd3 0.12's generated protos fail to import with protobuf >= 4 and the C++/upb backend;
# the pure-Python backend works.  Users and AWX execution environments will not set this.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

try:
    import etcd3  # noqa: F401
    import grpc  # noqa: F401, pylint: disable=unused-import
except Exception:  # pragma: no cover - reported through missing_required_lib
    HAS_ETCD3 = False
    ETCD3_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_ETCD3 = True
    ETCD3_IMPORT_ERROR = None

try:
    from urllib.parse import urlparse
except ImportError:  # pragma: no cover - Python 2 is not supported, kept for sanity's compile test
    from urlparse import urlparse  # type: ignore


def split_endpoint(endpoint):
    """``https://10.0.0.1:2379`` -> ("10.0.0.1", 2379)."""
    parsed = urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
    return parsed.hostname, parsed.port or 2379


def connect(endpoint, ca_cert, client_cert, client_key, timeout):
    """An etcd3 client for one member; TLS verification is always on."""
    host, port = split_endpoint(endpoint)
    return etcd3.client(host=host, port=port, ca_cert=ca_cert, cert_cert=client_cert,
                        cert_key=client_key, timeout=timeout)
