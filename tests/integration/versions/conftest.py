"""Fixtures of the version-check tests: API doubles serving the cluster fixtures."""
import pytest

from tests.lab.api_double import ApiDouble


@pytest.fixture(scope="module")
def lab_cas():
    """One set of lab CAs per test module (RSA key generation is the slow part of a double)."""
    from tests.lab.pki import ClusterCAs
    return ClusterCAs.create(key_type="ecdsa")


@pytest.fixture
def api_for(tmp_path, lab_cas):
    """``api_for("seed")`` -> a started ApiDouble serving that fixture; all are stopped afterwards."""
    started = []

    def start(cluster, **kwargs):
        api = ApiDouble(str(tmp_path / ("api%d" % len(started))), cluster, cas=kwargs.pop("cas", lab_cas), **kwargs)
        started.append(api)
        return api.start()

    yield start
    for api in started:
        api.stop()
