"""Entities that the thread using them waits on itself, in its own wait set, instead of through an executor.

Why: every message or request an rclpy executor dispatches costs Python work in the executor (rebuilding its
wait set over all the node's entities, a task, for a MultiThreadedExecutor a hand-off to a pool thread), for
every camera image and every Infer call through a model service. A thread that waits on just the entity it
needs, and is woken by its arrival, pays a fraction of that. Three users:

- `CameraInput` (the vision node's camera subscriptions, waited on by the worker thread);
- `DirectClient` (service calls made and answered in the calling thread: the remote model's Infer);
- `ServiceThreads` (a service served by its own threads: the model service's Infer).

Entities for these are created in a `WorkerOwned` callback group, which no executor ever runs.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from rclpy.callback_groups import CallbackGroup
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


class WorkerOwned(CallbackGroup):
    """A callback group the executor never executes (its entities are waited on by the thread that uses them)."""

    def can_execute(self, entity) -> bool:  # noqa: ARG002
        return False

    def beginning_execution(self, entity) -> bool:  # noqa: ARG002
        return False

    def ending_execution(self, entity) -> None:
        pass


def wait(
    node: Node,
    timeout: float | None,
    *,
    subscriptions: Iterable = (),
    clients: Iterable = (),
    services: Iterable = (),
    guards: Iterable[GuardCondition] = (),
) -> set[int]:
    """Block until one of the entities is ready or `timeout` seconds pass (None: no timeout); the handle
    pointers of the ready subscriptions, clients and services."""
    subscriptions, clients, services, guards = list(subscriptions), list(clients), list(services), list(guards)
    context = node.context.handle
    assert context is not None, "the node's context is shut down"
    wait_set = _rclpy.WaitSet(len(subscriptions), len(guards), 0, len(clients), len(services), 0, context)
    wait_set.clear_entities()
    for sub in subscriptions:
        wait_set.add_subscription(sub.handle)
    for client in clients:
        wait_set.add_client(client.handle)
    for srv in services:
        wait_set.add_service(srv.handle)
    for guard in guards:
        wait_set.add_guard_condition(guard.handle)
    wait_set.wait(-1 if timeout is None else max(0, int(timeout * 1e9)))
    ready = set(wait_set.get_ready_entities("subscription")) if subscriptions else set()
    if clients:
        ready |= set(wait_set.get_ready_entities("client"))
    if services:
        ready |= set(wait_set.get_ready_entities("service"))
    return ready


def take_all(sub, limit: int | None = None) -> list:
    """Every message waiting on subscription `sub` (serialised bytes for a raw subscription), oldest first;
    at most `limit` of them (the rest stay for the next take)."""
    out: list = []
    with sub.handle:
        while limit is None or len(out) < limit:
            got = sub.handle.take_message(sub.msg_type, sub.raw)
            if got is None:
                return out
            out.append(got[0])
    return out


class DirectClient:
    """A service client whose calls are sent and answered in the calling thread (no executor needed).

    Calls on one client are serialised by a lock, so a thread only ever takes its own answer; an answer that
    comes after its call timed out is recognised by its sequence number and dropped."""

    def __init__(self, node: Node, srv_type, name: str) -> None:
        self.node = node
        self.srv_type = srv_type
        self.client: Any = node.create_client(srv_type, name, callback_group=WorkerOwned())
        self.service_name = self.client.service_name
        self._lock = threading.Lock()

    def service_is_ready(self) -> bool:
        return self.client.service_is_ready()

    def wait_for_service(self, timeout: float) -> bool:
        return self.client.wait_for_service(timeout_sec=timeout)

    def call(self, request, timeout: float) -> Any | None:
        """Send `request` and wait for its answer; None when none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            with self.client.handle:
                sequence = self.client.handle.send_request(request)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if self.client.handle.pointer not in wait(self.node, left, clients=[self.client]):
                    continue
                while True:
                    with self.client.handle:
                        header, response = self.client.handle.take_response(self.srv_type.Response)
                    if header is None:
                        break
                    if header.request_id.sequence_number == sequence:
                        return response


SEND_RETRIES = 30  # answers tried (each waits ~0.1 s in the middleware for the caller's reader)


class ServiceThreads:
    """Services answered by `threads` threads of their own, `callback(request, response) -> response` in each.

    Leader/follower: one thread at a time waits on the services; the one that takes a request hands the
    waiting over to the next (a lock release, while it works) and runs the callback itself, so a request
    costs one wake-up and no hand-off, and a callback that waits (for a camera frame, a model) never holds
    up the executor that serves parameters and diagnostics. At most `threads` requests run at once; more
    wait in the services' queues, `queue_depth` deep (DDS keep-last: a burst deeper than that loses its
    oldest requests, so it must be at least the burst callers may send). `stop()` before the node is
    destroyed."""

    def __init__(
        self,
        node: Node,
        services: Iterable[tuple[Any, str, Callable[[Any, Any], Any]]],
        threads: int,
        queue_depth: int = 10,
    ) -> None:
        self.node = node
        qos = QoSProfile(
            depth=queue_depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        self._served: list[Any] = [
            (
                node.create_service(
                    srv_type, name, lambda _req, res: res, qos_profile=qos, callback_group=WorkerOwned()
                ),
                srv_type,
                callback,
            )
            for srv_type, name, callback in services
        ]
        self._by_pointer = {srv.handle.pointer: (srv, srv_type, cb) for srv, srv_type, cb in self._served}
        self._guard = GuardCondition(None, None, context=node.context)
        self._leader = threading.Lock()
        self._send_lock = threading.Lock()  # warnings.catch_warnings is process-wide
        self._stopping = False
        self._threads = [threading.Thread(target=self._run, name=f"srv_{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _take(self):
        """Wait (as leader) for a request; (service, srv_type, callback, request, header) or None."""
        with self._leader:
            while not self._stopping:
                ready = wait(self.node, None, services=[s for s, _, _ in self._served], guards=[self._guard])
                for pointer in ready:
                    srv, srv_type, callback = self._by_pointer[pointer]
                    with srv.handle:
                        taken = srv.handle.service_take_request(srv_type.Request)
                    if taken is not None and taken[1] is not None:
                        return srv, srv_type, callback, taken[0], taken[1]
        return None

    def _run(self) -> None:
        log = self.node.get_logger()
        while not self._stopping:
            try:
                taken = self._take()
            except Exception as exc:  # the context is shutting down under the wait, or a request did not read
                if not self._stopping:
                    log.error(f"service request dropped: {exc}", throttle_duration_sec=5.0)
                    time.sleep(0.01)
                continue
            if taken is None:
                continue
            srv, srv_type, callback, request, header = taken
            try:
                response = callback(request, srv_type.Response())
                if not self._send(srv, response, header):
                    log.error(
                        f"{srv.srv_name}: the caller's answer could not be sent (its response reader was "
                        f"never matched within {SEND_RETRIES * 0.1:.0f} s)",
                        throttle_duration_sec=1.0,
                    )
            except Exception as exc:  # one bad request never ends a serving thread
                log.error(f"{srv.srv_name}: {type(exc).__name__}: {exc}", throttle_duration_sec=1.0)

    def _send(self, srv, response, header) -> bool:
        """Send an answer; retried while the middleware says the caller cannot receive it yet. A caller that
        has just appeared can see the service, and call it, before the service has matched the caller's
        response reader: rmw_fastrtps then waits ~100 ms and drops the answer with a warning, which a busy
        machine's discovery can outlast. Answered at once, as these threads answer, that race is real."""
        for _ in range(SEND_RETRIES):
            with self._send_lock, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                srv.send_response(response, header)
            if not any("will not receive response" in str(w.message) for w in caught):
                return True
        return False

    def stop(self) -> None:
        """End the threads (they finish the request in hand) and destroy the services."""
        self._stopping = True
        self._guard.trigger()  # wakes the one waiting thread; the others see `_stopping` when they would wait
        for thread in self._threads:
            thread.join(5.0)
        for srv, _, _ in self._served:
            self.node.destroy_service(srv)
        self._guard.destroy()
