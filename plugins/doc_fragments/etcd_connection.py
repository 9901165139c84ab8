# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  endpoints:
    description:
      - Client URLs of the etcd members to talk to.
      - Modules discover the rest of the cluster from the member list, so one reachable endpoint
        is enough for read-only modules; the listed endpoints are also checked for health.
    type: list
    elements: str
    default: ['https://127.0.0.1:2379']
  ca_cert:
    description:
      - CA bundle that signed the members' serving certificates. TLS verification is always on.
    type: path
    default: /etc/kubernetes/pki/etcd/ca.crt
  client_cert:
    description: Client certificate signed by the etcd CA (kubeadm's healthcheck client by default).
    type: path
    default: /etc/kubernetes/pki/etcd/healthcheck-client.crt
  client_key:
    description: Private key of O(client_cert).
    type: path
    default: /etc/kubernetes/pki/etcd/healthcheck-client.key
  command_timeout:
    description:
      - Seconds to wait for one ordinary etcd request (status, member list, health).
      - Long operations such as defragmentation have their own timeouts.
    type: int
    default: 10
requirements:
  - etcd3 (python-etcd3) >= 0.12.0
  - grpcio >= 1.50
  - protobuf >= 4.21.1
  - cryptography >= 39.0
"""
