# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  pki_dir:
    description:
      - Directory of kubeadm's certificates and CAs (C(certificatesDir) of the ClusterConfiguration).
      - The etcd certificates are expected in its C(etcd/) subdirectory, as kubeadm lays them out.
    type: path
    default: /etc/kubernetes/pki
  kubeconfig_dir:
    description:
      - Directory of the kubeconfig files kubeadm writes (C(admin.conf), C(super-admin.conf),
        C(controller-manager.conf), C(scheduler.conf), C(kubelet.conf)).
    type: path
    default: /etc/kubernetes
requirements:
  - cryptography >= 39.0
  - PyYAML >= 6.0.3
"""
