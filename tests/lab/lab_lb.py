"""The lab's load balancer for ``controlPlaneEndpoint``: a TCP proxy with a health check.

kubeadm's HA set-up needs a load balancer in front of the API servers
(https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/high-availability/,
"Create load balancer for kube-apiserver": a TCP forwarder with a health check on the API
servers' port).  This is that stand-in: ``python -m tests.lab.lab_lb LISTEN BACKEND...`` listens
on the lab bridge's address (``10.77.<k>.1:6443``) and forwards each connection to a healthy
backend (round robin; a backend is healthy while a TCP connect to it succeeds, checked every
second; a failed connect moves on to the next backend at once).  TLS passes through untouched.
"""
import itertools
import socket
import sys
import threading
import time

CHECK_EVERY = 1.0


def _split(address):
    host, _sep, port = address.rpartition(":")
    return host, int(port)


class Balancer(object):
    def __init__(self, listen, backends):
        self.listen = _split(listen)
        self.backends = [_split(b) for b in backends]
        self.healthy = set()
        self._rr = itertools.count()

    def check(self):
        while True:
            for backend in self.backends:
                try:
                    socket.create_connection(backend, timeout=1).close()
                    self.healthy.add(backend)
                except OSError:
                    self.healthy.discard(backend)
            time.sleep(CHECK_EVERY)

    def connect(self):
        start = next(self._rr)
        order = [self.backends[(start + i) % len(self.backends)] for i in range(len(self.backends))]
        order.sort(key=lambda b: b not in self.healthy)     # healthy ones first, in round-robin order
        for backend in order:
            try:
                return socket.create_connection(backend, timeout=3)
            except OSError:
                self.healthy.discard(backend)
        return None

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle(self, client):
        upstream = self.connect()
        if upstream is None:
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=self.pipe, args=(client, upstream), daemon=True).start()
        self.pipe(upstream, client)
        client.close()
        upstream.close()

    def serve(self):
        threading.Thread(target=self.check, daemon=True).start()
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(self.listen)
        server.listen(128)
        print("listening on %s:%d for %s" % (self.listen + (self.backends,)), flush=True)
        while True:
            client, _addr = server.accept()
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()


if __name__ == "__main__":
    Balancer(sys.argv[1], sys.argv[2:]).serve()
