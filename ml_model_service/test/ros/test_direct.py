"""ros/direct.py in this process over real DDS: entities that the thread using them waits on itself — raw
subscriptions taken in bulk, service calls answered in the calling thread (`DirectClient`), services served by
threads of their own (`ServiceThreads`) — and never run by the executor that spins their node."""

from __future__ import annotations

import threading

import pytest
from rclpy.guard_condition import GuardCondition
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from std_msgs.msg import String

from ml_model_service.ros.direct import DirectClient, ServiceThreads, WorkerOwned, take_all, wait
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import GetMetadata  # an empty request; an answer with success and message

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def node(spinner):
    """A node spun by the client's executor, as the product's nodes are: direct entities must never run there."""
    with spinner.spun(Node("direct_under_test", namespace="/direct_test", context=spinner.node.context)) as made:
        yield made


def test_a_raw_subscription_is_waited_on_and_taken_by_its_thread_never_by_the_executor(spinner, node):
    called: list = []
    sub = node.create_subscription(
        String, "/direct_test/text", called.append, RELIABLE, callback_group=WorkerOwned(), raw=True
    )
    pub = spinner.node.create_publisher(String, "/direct_test/text", RELIABLE)
    wait_for(lambda: pub.get_subscription_count() == 1, 5, what="the subscription matched")
    assert wait(node, 0.05, subscriptions=[sub]) == set()  # nothing yet: the timeout ends the wait
    for i in range(5):
        pub.publish(String(data=f"m{i}"))
    assert sub.handle.pointer in wait(node, 5, subscriptions=[sub])
    taken: list[bytes] = []
    while len(taken) < 5:  # the first three at most, then the rest, oldest first
        got = take_all(sub, limit=3)
        assert len(got) <= 3
        taken += got
        if len(taken) < 5:
            wait(node, 5, subscriptions=[sub])
    assert [deserialize_message(raw, String).data for raw in taken] == [f"m{i}" for i in range(5)]
    assert take_all(sub) == [] and called == []  # the executor spinning the node never ran its callback
    spinner.node.destroy_publisher(pub)


def test_a_guard_condition_wakes_a_wait_with_no_timeout(node):
    guard = GuardCondition(None, None, context=node.context)
    sub = node.create_subscription(String, "/direct_test/quiet", lambda _m: None, 1, callback_group=WorkerOwned())
    ended = threading.Event()

    def waiter() -> None:
        assert wait(node, None, subscriptions=[sub], guards=[guard]) == set()  # woken: no entity ready
        ended.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert not ended.wait(0.2)  # no timeout: it waits
    guard.trigger()
    assert ended.wait(5), "the guard condition did not wake the wait"
    thread.join(5)
    node.destroy_subscription(sub)
    guard.destroy()


def test_service_threads_serve_requests_at_once_and_outlive_a_failing_one(spinner, node):
    """Three threads: three calls run together (each waits for the other two at a barrier), a callback that
    raises costs its caller an answer only, and stop() ends the threads and removes the service."""
    barrier = threading.Barrier(3, timeout=5)
    served_by: list[str] = []

    def answer(_request: GetMetadata.Request, response: GetMetadata.Response) -> GetMetadata.Response:
        if not served_by and getattr(answer, "fail_next", False):
            answer.fail_next = False
            raise ValueError("a malformed request")
        barrier.wait()  # only passes when three requests run at once
        served_by.append(threading.current_thread().name)
        response.success, response.message = True, threading.current_thread().name
        return response

    threads = ServiceThreads(node, [(GetMetadata, "/direct_test/get_metadata", answer)], threads=3)
    clients = [DirectClient(spinner.node, GetMetadata, "/direct_test/get_metadata") for _ in range(3)]
    try:
        assert all(c.wait_for_service(5) for c in clients) and clients[0].service_name == "/direct_test/get_metadata"
        answers: list = [None] * 3

        def ask(i: int) -> None:
            answers[i] = clients[i].call(GetMetadata.Request(), 10)

        callers = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for t in callers:
            t.start()
        for t in callers:
            t.join(15)
        assert all(a is not None and a.success for a in answers), answers
        assert sorted(a.message for a in answers) == sorted(served_by) and len(set(served_by)) == 3
        answer.fail_next = True
        served_by.clear()
        assert clients[0].call(GetMetadata.Request(), 0.5) is None  # its callback raised: no answer, a timeout
        barrier.reset()
        callers = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for t in callers:
            t.start()
        for t in callers:
            t.join(15)
        assert all(a is not None and a.success for a in answers)  # every thread still serves
    finally:
        threads.stop()
    assert not any(t.is_alive() for t in threads._threads)  # noqa: SLF001
    assert wait_for(lambda: not clients[0].service_is_ready(), 5, what="the service gone after stop()")
    for c in clients:
        spinner.node.destroy_client(c.client)
