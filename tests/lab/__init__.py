"""The lab: real etcd clusters with kubeadm's PKI layout on 127.0.0.1, and test doubles for the
components these machines cannot run.  Tests, benchmarks and the demo all use it."""
