"""Real Prometheus and node_exporter (Debian's packages, scripts/system-packages) on free ports for tests.

``NodeExporter(textfile_dir)`` runs prometheus-node-exporter with only the textfile collector;
``Prometheus(workdir, targets, rule_files)`` runs a Prometheus server with its own configuration,
temporary storage, a 1 s scrape and evaluation interval and the given rule files, and answers
queries through its HTTP API (``/api/v1/query``, ``/api/v1/alerts``).  Both listen on 127.0.0.1 only,
never on the packages' default ports 9090/9100, and are killed (by pid) when the ``with`` block ends.
"""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import yaml

from tests.lab.ports import free_port

MISSING = "%s is not installed: run scripts/system-packages (Debian's prometheus and prometheus-node-exporter)"


def program(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError(MISSING % name)
    return path


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


class _Process(object):
    def __init__(self, argv, log_path, ready_url, timeout=60):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s: %s" % (argv[0], self.proc.returncode, self.output()))
            try:
                if http_get(ready_url)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("%s not ready at %s within %ss: %s" % (argv[0], ready_url, timeout, self.output()))
            time.sleep(0.2)

    def output(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class NodeExporter(_Process):
    def __init__(self, textfile_dir, workdir):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        argv = [program("prometheus-node-exporter"), "--collector.disable-defaults", "--collector.textfile",
                "--collector.textfile.directory=%s" % textfile_dir, "--web.listen-address=%s" % self.address]
        super(NodeExporter, self).__init__(argv, os.path.join(workdir, "node-exporter.log"),
                                           "http://%s/metrics" % self.address)

    def metrics(self):
        return http_get("http://%s/metrics" % self.address)[1]


class Prometheus(_Process):
    def __init__(self, workdir, targets, rule_files, interval="1s"):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [os.path.abspath(path) for path in rule_files],
            "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": list(targets)}]}],
        }
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as handle:
            yaml.safe_dump(config, handle)
        storage = os.path.join(workdir, "tsdb")
        os.makedirs(storage, exist_ok=True)
        argv = [program("prometheus"), "--config.file=%s" % config_path, "--storage.tsdb.path=%s" % storage,
                "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"]
        super(Prometheus, self).__init__(argv, os.path.join(workdir, "prometheus.log"), self.url + "/-/ready")

    def api(self, path, **query):
        url = "%s/api/v1/%s" % (self.url, path)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        body = json.loads(http_get(url)[1])
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        """{frozenset(labels without __name__): value} of an instant query."""
        result = self.api("query", query=expr)["result"]
        return {frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"): float(r["value"][1])
                for r in result}

    def alerts(self):
        return self.api("alerts")["alerts"]

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("Prometheus: %s not seen within %ss; alerts: %s; log: %s"
                                     % (what, timeout, json.dumps(self.alerts())[:3000], self.output()))
            time.sleep(0.5)
