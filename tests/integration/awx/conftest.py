"""The lab control plane of the report tests (3 real etcd members, kubeadm PKI, the API double)."""
from tests.integration.report.conftest import control_plane  # noqa: F401  # pylint: disable=unused-import
