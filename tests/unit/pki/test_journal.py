"""The multi-file transaction (_journal), killed for real at every write point in a forked child,
then recovered: the files are all old or all new, never mixed, and nothing is left behind."""
import hashlib
import json
import os
import signal

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _journal
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import OperationFailed

NAMES = ("a.key", "a.crt", "b.conf")


def setup_files(tmp_path):
    directory = tmp_path / "etc"
    directory.mkdir()
    for name in NAMES:
        (directory / name).write_bytes(b"old " + name.encode())
        os.chmod(str(directory / name), 0o644)
    return str(directory), str(tmp_path / "journal"), str(tmp_path / "backups" / "stamp")


def new_data(name):
    return b"new " + name.encode() * 100


def run_transaction(directory, journal, backups):
    txn = _journal.Transaction(journal, backups)
    for name in NAMES:
        txn.add(os.path.join(directory, name), new_data(name), private=name.endswith(".key"))
    return txn.commit()


def commit_in_child(directory, journal, backups, fault):
    """Run the transaction in a forked child with the fault hook set; returns the child's end signal."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.environ[_journal.FAULT_ENV] = fault
        _journal._fault_counts.clear()
        try:
            run_transaction(directory, journal, backups)
        finally:
            os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None


def contents(directory):
    return {name: open(os.path.join(directory, name), "rb").read() for name in NAMES}


FAULTS = (["after:begin:1"] + ["after:backup:%d" % n for n in (1, 2, 3)] + ["after:stage:%d" % n for n in (1, 2, 3)]
          + ["after:commit:1"] + ["after:swap:%d" % n for n in (1, 2, 3)] + ["after:end:1"])


@pytest.mark.parametrize("fault", FAULTS)
def test_killed_at_each_write_point_recovers_to_all_old_or_all_new(tmp_path, fault):
    directory, journal, backups = setup_files(tmp_path)
    old = contents(directory)
    assert commit_in_child(directory, journal, backups, fault) == signal.SIGKILL
    plan = _journal.plan_recovery(journal)
    step = fault.split(":")[1]
    if step == "end":
        assert plan is None
    else:
        assert plan["action"] == ("discard" if step in ("begin", "backup", "stage") else "roll_forward")
    done = _journal.recover(journal)
    assert (done is None) == (plan is None)
    now = contents(directory)
    new = {name: new_data(name) for name in NAMES}
    assert now == (old if step in ("begin", "backup", "stage") else new)
    assert sorted(os.listdir(directory)) == sorted(NAMES)  # no staged file left
    assert not os.path.exists(journal)
    assert _journal.recover(journal) is None


def test_a_damaged_staged_file_rolls_back_from_the_backups(tmp_path):
    directory, journal, backups = setup_files(tmp_path)
    old = contents(directory)
    assert commit_in_child(directory, journal, backups, "after:swap:1") == signal.SIGKILL
    with open(journal) as handle:
        staged = json.load(handle)["files"][2]["staged"]
    with open(staged, "r+b") as handle:  # a torn write the disk did not keep
        handle.truncate(5)
    plan = _journal.recover(journal)
    assert plan["action"] == "roll_back" and backups in plan["reason"]
    assert contents(directory) == old
    assert sorted(os.listdir(directory)) == sorted(NAMES) and not os.path.exists(journal)


def test_roll_back_without_its_backup_refuses_and_names_it(tmp_path):
    directory, journal, backups = setup_files(tmp_path)
    assert commit_in_child(directory, journal, backups, "after:swap:1") == signal.SIGKILL
    with open(journal) as handle:
        body = json.load(handle)
    os.unlink(body["files"][2]["staged"])
    os.unlink(body["files"][0]["backup"])
    with pytest.raises(OperationFailed) as err:
        _journal.recover(journal)
    assert body["files"][0]["backup"] in err.value.msg and os.path.exists(journal)


def test_journal_holds_paths_and_digests_never_content(tmp_path):
    directory, journal, backups = setup_files(tmp_path)
    assert commit_in_child(directory, journal, backups, "after:commit:1") == signal.SIGKILL
    text = open(journal, "rb").read()
    for name in NAMES:
        assert new_data(name) not in text and (b"old " + name.encode()) not in text
    body = json.loads(text)
    assert body["files"][0]["new"] == hashlib.sha256(new_data("a.key")).hexdigest()
    assert os.stat(journal).st_mode & 0o777 == 0o600
    # The staged key is private; the staged certificate keeps its target's mode.
    assert os.stat(body["files"][0]["staged"]).st_mode & 0o777 == 0o600
    assert os.stat(body["files"][1]["staged"]).st_mode & 0o777 == 0o644


@pytest.mark.parametrize("relative", [False, True], ids=["absolute link", "relative link"])
def test_symlinked_targets_are_written_through_keeping_the_link(tmp_path, relative):
    directory, journal, backups = setup_files(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    real = shared / "a.crt"
    os.rename(os.path.join(directory, "a.crt"), str(real))
    os.symlink("../shared/a.crt" if relative else str(real), os.path.join(directory, "a.crt"))
    backup_map = run_transaction(directory, journal, backups)
    assert os.path.islink(os.path.join(directory, "a.crt"))
    assert real.read_bytes() == new_data("a.crt")
    assert open(backup_map[os.path.join(directory, "a.crt")], "rb").read() == b"old a.crt"
    assert sorted(os.listdir(str(shared))) == ["a.crt"]


def test_an_os_error_mid_renewal_is_undone_and_reported_cleanly(tree, monkeypatch):
    from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki
    from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import renew
    from tests.lab.trees import tree_digest
    # A file where this run's backup directory must go: the backups cannot be written.
    os.makedirs(tree.backup_dir)
    with open(os.path.join(tree.backup_dir, "blocked"), "w") as handle:
        handle.write("not a directory")
    monkeypatch.setattr(renew._files, "timestamp", lambda: "blocked")
    digest = tree_digest(tree.root)
    with pytest.raises(OperationFailed) as err:
        renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir)
    assert "nothing was renewed (every file is as it was)" in err.value.msg and "blocked" in err.value.msg
    assert tree_digest(tree.root) == digest
    assert not os.path.exists(pki.journal_path(tree.pki_dir))


def test_a_second_renewal_on_the_node_is_refused_while_one_runs(tree):
    import fcntl
    from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki
    from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import renew
    from tests.lab.trees import tree_digest
    digest = tree_digest(tree.root)
    holder = os.open(os.path.dirname(pki.journal_path(tree.pki_dir)), os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(OperationFailed) as err:
            renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir)
        assert "another certificate renewal is running" in err.value.msg
        assert tree_digest(tree.root) == digest
    finally:
        os.close(holder)
    assert renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir,
                                    backup_dir=tree.backup_dir)["changed"] is True
