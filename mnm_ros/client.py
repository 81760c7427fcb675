"""The other side of the fusion node, for the demo, the benchmark and the tests.

`start_node` runs `fuse_node` in its own process (real DDS traffic between processes); `FusionClient`
publishes frames into the node's input topic and collects what comes back on pseudo_ir, fused and
/diagnostics, spinning its own executor in a background thread.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnm_ros.diagnostics import diagnostics_values

LOGGER = logging.getLogger(__name__)
EMPTY = "''"
"""An empty string as a `--ros-args -p` value (the value is parsed as YAML)."""


def start_node(namespace: str, parameters: Mapping[str, Any], env: Mapping[str, str] | None = None,
               log_path: str | Path | None = None, params_file: str | Path | None = None,
               remaps: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start `fuse_node` in `namespace` with `-p name:=value` parameters; output goes to `log_path`.

    `params_file` is passed as `--params-file` before the `-p` values, which therefore override it;
    `remaps` are `-r from:=to` name remappings (e.g. {"image": "/camera/image_raw"}).
    """
    command = [sys.executable, "-m", "mnm_ros.fuse_node", "--ros-args", "-r", f"__ns:={namespace}"]
    for source, target in (remaps or {}).items():
        command += ["-r", f"{source}:={target}"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    for name, value in parameters.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        command += ["-p", f"{name}:={text or EMPTY}"]
    if log_path is None:
        return subprocess.Popen(command, env=dict(env or os.environ), stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=dict(env or os.environ), stdout=log, stderr=subprocess.STDOUT)


def stop_node(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT (a clean lifecycle shutdown), then SIGKILL after `timeout` s; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@dataclass
class Received:
    """The outputs of one input frame, keyed by its header stamp."""

    sent_ns: int
    pseudo_ir: Any = None
    fused: Any = None
    received_ns: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.pseudo_ir is not None and self.fused is not None

    @property
    def latency_ms(self) -> float:
        """Send → last output received (ms), end to end."""
        return (max(self.received_ns.values()) - self.sent_ns) / 1e6


class FusionClient:
    """Publishes frames to `<namespace>/image` and collects the node's outputs and diagnostics."""

    def __init__(self, namespace: str = "/mnm", compressed: bool = False, reliability: str = "best_effort",
                 depth: int = 5, name: str = "mnm_client") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import CompressedImage, Image

        from mnm_ros.qos import make_qos

        self.namespace = namespace.rstrip("/") or ""
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        qos = make_qos(reliability, depth)
        self.publisher = self.node.create_publisher(CompressedImage if compressed else Image,
                                                    f"{self.namespace}/image", qos)
        self.results: dict[int, Received] = {}
        self.diagnostics: list[dict[str, str]] = []
        self.statuses: list[tuple[int, str]] = []
        """(level, message) of each of the node's diagnostics, in order (level 0 OK, 1 WARN, 2 ERROR)."""
        self._lock = threading.Lock()
        for output in ("pseudo_ir", "fused"):
            self.node.create_subscription(Image, f"{self.namespace}/{output}",
                                          lambda msg, output=output: self._on_output(output, msg), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="mnm-client", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _on_output(self, output: str, msg) -> None:
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self._lock:
            result = self.results.get(stamp)
            if result is not None:
                setattr(result, output, msg)
                result.received_ns[output] = now

    def _on_diagnostics(self, msg) -> None:
        if msg.status and msg.status[0].name.startswith(f"{self.namespace}/"):
            with self._lock:
                self.diagnostics.append(diagnostics_values(msg))
                self.statuses.append((ord(msg.status[0].level), msg.status[0].message))

    def wait_ready(self, timeout: float = 60.0, process: subprocess.Popen | None = None) -> bool:
        """Wait until the node publishes `fused` and reads our input; False on timeout or if `process` exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return False
            if self.node.count_publishers(f"{self.namespace}/fused") and self.publisher.get_subscription_count():
                time.sleep(0.3)  # let the matched endpoints finish their handshake
                return True
            time.sleep(0.1)
        return False

    def send(self, msg) -> int:
        """Stamp `msg` with the wall clock (unique, ns) and publish it; returns the stamp."""
        with self._lock:
            stamp = time.time_ns()
            while stamp in self.results:
                stamp += 1
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            self.results[stamp] = Received(sent_ns=stamp)
        self.publisher.publish(msg)
        return stamp

    def complete(self) -> list[Received]:
        """Frames whose pseudo-IR and fused outputs both came back, in sending order."""
        with self._lock:
            return [r for _, r in sorted(self.results.items()) if r.complete]

    def wait_for(self, predicate, timeout: float) -> bool:
        """Poll `predicate()` every 50 ms until true or `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return bool(predicate())

    def latest_diagnostics(self) -> dict[str, str]:
        with self._lock:
            return dict(self.diagnostics[-1]) if self.diagnostics else {}

    def close(self) -> None:
        import rclpy

        try:
            self._executor.shutdown(timeout_sec=2.0)
            self.node.destroy_node()
        finally:
            rclpy.try_shutdown(context=self.context)
            self._thread.join(timeout=5.0)
