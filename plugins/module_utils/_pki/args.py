# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared argument spec of the certificate modules (documented in doc_fragments/kubeadm_pki)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cplane.kubeadm.plugins.module_utils._pki.kubeadm import KUBECONFIG_DIR, PKI_DIR

PKI_PATH_ARGS = dict(
    pki_dir=dict(type="path", default=PKI_DIR),
    kubeconfig_dir=dict(type="path", default=KUBECONFIG_DIR),
)


def pki_argument_spec(**module_args):
    spec = dict(PKI_PATH_ARGS)
    spec.update(module_args)
    return spec
