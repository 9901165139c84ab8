# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Same option names, aliases and environment variables as kubernetes.core's k8s_auth_options.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file.
      - When neither O(kubeconfig) nor O(host) is set, the first entry of E(KUBECONFIG) is used, else
        C(~/.kube/config), else kubeadm's C(/etc/kubernetes/admin.conf) (readable by root only; use become).
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: path
  context:
    description:
      - The kubeconfig context to use; defaults to the kubeconfig's C(current-context).
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the API server, for example C(https://10.0.0.10:6443). Overrides the kubeconfig's server.
      - When set without O(kubeconfig), no kubeconfig is read; give credentials with O(api_key) or
        O(client_cert)/O(client_key).
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token to authenticate with. Never shown in output or messages.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  ca_cert:
    description:
      - CA bundle that signed the API server's certificate (kubeadm C(/etc/kubernetes/pki/ca.crt)).
        Overrides the kubeconfig's C(certificate-authority-data).
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Client certificate for TLS client authentication. Overrides the kubeconfig's.
      - Can also be set with the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Private key of O(client_cert).
      - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  validate_certs:
    description:
      - Whether to verify the API server's certificate. Defaults to the kubeconfig's setting (verification on
        unless C(insecure-skip-tls-verify) is set). Turning it off is for labs only.
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
requirements:
  - kubernetes >= 37.0.2 (the Kubernetes Python client)
  - PyYAML >= 6.0.3
notes:
  - Failures to read the kubeconfig or reach the API server are reported with the file or host and what to do;
    tokens and keys never appear in messages.
"""
