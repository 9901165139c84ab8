"""The lab itself: a 3-member TLS cluster starts, serves kubeadm-layout TLS clients, and tears down."""


def test_three_member_cluster_serves_tls_clients(etcd3_cluster):
    lab = etcd3_cluster
    client = lab.client(lab.members[1])
    client.put("/lab/smoke", "ok")
    value = lab.client(lab.members[2]).get("/lab/smoke")[0]
    assert value == b"ok"
    assert lab.leader() in {m.name for m in lab.members}
    out = lab.etcdctl("member", "list").stdout
    assert out.count("started") == 3
