"""The overall deadline of the API client: it interrupts a call that blocks, whatever blocks."""
import time

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._k8s_client import Deadline


class Expired(Exception):
    pass


def test_a_blocking_call_is_interrupted_at_the_deadline():
    started = time.monotonic()
    with pytest.raises(Expired):
        Deadline(0.3).run(Expired, time.sleep, 10)
    assert time.monotonic() - started < 2


def test_the_alarm_is_cleared_after_a_call_that_finished_in_time():
    assert Deadline(0.3).run(Expired, lambda: "done") == "done"
    time.sleep(0.5)  # a left-over alarm would end the test process here


def test_no_time_left_fails_before_calling():
    now = [100.0]
    deadline = Deadline(5, clock=lambda: now[0])
    now[0] = 106.0
    with pytest.raises(Expired):
        deadline.run(Expired, pytest.fail, "must not be called")


def test_socket_timeouts_are_capped_at_the_time_left():
    now = [0.0]
    deadline = Deadline(4, clock=lambda: now[0])
    assert deadline.cap(10) == 4
    now[0] = 3.5
    assert deadline.cap(10) == 0.5
    assert Deadline(None).cap(10) == 10
