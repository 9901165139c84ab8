"""A cluster that hit its quota (NOSPACE alarm) is defragmented and disarmed by etcd_defrag."""
import grpc
import pytest

from tests.lab.ansible_run import run_module
from tests.lab.etcd_cluster import EtcdLab

MIB = 1024 * 1024
QUOTA = 16 * MIB


def active_alarms(client):
    return sorted(alarm.alarm_type for alarm in client.list_alarms())


@pytest.mark.etcd_matrix
def test_nospace_alarm_is_disarmed_once_defrag_brings_every_member_under_the_quota(tmp_path, etcd_version):
    with EtcdLab(str(tmp_path / "lab"), size=3, quota_backend_bytes=QUOTA, etcd_version=etcd_version) as lab:
        client = lab.client()
        value = b"x" * (64 * 1024)
        with pytest.raises(grpc.RpcError) as exceeded:
            for index in range(2 * QUOTA // len(value)):
                client.put("/fill/%05d" % index, value)
        assert exceeded.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED   # "database space exceeded"
        # NOSPACE (raised by each member that hit the quota): the cluster takes reads and deletes only.
        assert set(active_alarms(client)) == {1}
        deleted = client.delete_prefix("/fill/")
        client.compact(deleted.header.revision, physical=True)

        result = run_module("etcd_defrag", lab.connection_args(
            disarm_nospace=True, quota_bytes=QUOTA, min_db_size=MIB, pause_seconds=0.2))

        assert not result["failed"], result.get("msg")
        assert result["changed"] is True
        # etcd refuses the lock's lease under NOSPACE: the run goes on without the lock, and says so
        assert result["lock"]["acquired"] is False
        assert any("could not be taken" in w and "database space exceeded" in w for w in result["warnings"]), result
        assert [m["action"] for m in result["members"]] == ["defragmented"] * 3
        for member in result["members"]:
            assert member["db_size_after"] < 0.9 * QUOTA <= member["db_size_before"]
        assert result["alarms_disarmed"], result
        assert active_alarms(client) == []
        client.put("/after-disarm", "writable again")
        assert lab.client(lab.members[2]).get("/after-disarm")[0] == b"writable again"
