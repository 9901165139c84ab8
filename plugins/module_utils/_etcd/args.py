# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared argument spec of every etcd module (documented in doc_fragments/etcd_connection)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cplane.kubeadm.plugins.module_utils._pki.kubeadm import (
    ETCD_CA, ETCD_CLIENT_CERT, ETCD_CLIENT_KEY)

ETCD_CONNECTION_ARGS = dict(
    endpoints=dict(type="list", elements="str", default=["https://127.0.0.1:2379"]),
    ca_cert=dict(type="path", default=ETCD_CA),
    client_cert=dict(type="path", default=ETCD_CLIENT_CERT),
    client_key=dict(type="path", default=ETCD_CLIENT_KEY, no_log=False),
    command_timeout=dict(type="int", default=10),
)


def etcd_argument_spec(**module_args):
    """The connection options plus the module's own."""
    spec = dict(ETCD_CONNECTION_ARGS)
    spec.update(module_args)
    return spec


def connection_params(params):
    """The connection options out of ``module.params``, as keyword arguments for the backends."""
    return {name: params[name] for name in ETCD_CONNECTION_ARGS}
