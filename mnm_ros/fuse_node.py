"""The fusion node: camera frames in, pseudo-IR and fused frames out (a thin layer over mnm_core.pipeline).

Lifecycle: configure reads the parameters, loads the Fuser (checkpoint, backend, text encoder) and makes
the publishers; activate subscribes and starts the inference thread; deactivate and cleanup undo that.
With `autostart` (default) the node configures and activates itself at start-up.

Topics (relative, so a namespace per camera works; the default namespace is /mnm):
  image (sub)      sensor_msgs/Image or CompressedImage (`input_type`)
  pseudo_ir (pub)  sensor_msgs/Image mono8, input header copied
  fused (pub)      sensor_msgs/Image in the input's encoding family, input header copied
  /diagnostics     diagnostic_msgs/DiagnosticArray: rates, latency, drops, backend, modulation age

The node never stops serving silently: a bad frame is rejected and counted, any failure while processing
or publishing a frame is counted and logged once per kind, and the loop goes on with the next frame.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image

from mnm_core.errors import BackendError, InputError, TextEncoderError
from mnm_core.frames import Frame, FrameError, decode_to_frame, shown
from mnm_core.pipeline import Fuser
from mnm_ros.conversions import array_to_image, check_compressed, fused_to_image, image_to_frame
from mnm_ros.diagnostics import LogOnce, NodeStats, build_diagnostics
from mnm_ros.frame_slot import FrameSlot
from mnm_ros.params import declare_parameters, read_configs
from mnm_ros.qos import make_qos

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble and older name the module qos_event
    from rclpy.qos_event import SubscriptionEventCallbacks

LOGGER = logging.getLogger(__name__)
DEFAULT_NAMESPACE = "/mnm"
INPUT_TYPES = {"sensor_msgs/msg/Image": "raw", "sensor_msgs/msg/CompressedImage": "compressed"}
REJECT_LOG_PERIOD_S = 10.0
"""A kind of bad frame is logged when first seen, then at most once per this period (encodings: once)."""
LIFECYCLE_WAIT_S = 10.0
"""deactivate / cleanup wait this long for the frame being processed."""
SHUTDOWN_WAIT_S = 1.0
"""At process exit (Ctrl-C), the wait for an inference in progress before the process ends without it."""
ERROR_CHARS = 500
"""Longest exception text quoted in a log line."""

EXIT_FAILED, EXIT_BACKEND, EXIT_TEXT = 1, 3, 4
"""Exit codes of `main` when start-up fails: in general, in the backend, in the text encoder."""

Pending = tuple[object, Callable[[], Frame], float]
"""(input header, frame maker, monotonic receive time) waiting in the slot."""


class FuseNode(LifecycleNode):
    """Lifecycle node: converts messages and calls `Fuser.process` in its own thread."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("namespace", DEFAULT_NAMESPACE)
        super().__init__("fuse_node", **kwargs)
        declare_parameters(self)
        self.failure: BaseException | None = None
        """Why the last configure failed, for the exit code."""
        self._fuser: Fuser | None = None
        self._outputs: dict[str, object] = {}
        self._input_sub = None
        self._input_timers: list = []
        self._slot: FrameSlot[Pending] = FrameSlot()
        self._worker: threading.Thread | None = None
        self._stats = NodeStats()
        self._input_type = ""
        self._log_kinds = LogOnce()
        """Problems by kind (a fixed set: rejection kinds, failure stages and exception types)."""
        self._log_strings = LogOnce()
        """Problems named by a peer's strings (encodings, message types): any number of distinct ones."""

    # lifecycle ---------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._node_cfg, self._qos_cfg, pipeline, text = read_configs(self)
            self._fuser = Fuser.from_config(pipeline, text)
        except Exception as exc:  # any load failure (missing weights, backend, encoder) fails the transition
            self.failure = exc
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.failure = None
        qos = make_qos(self._qos_cfg.reliability, self._qos_cfg.depth)
        self._outputs = {
            "pseudo_ir": self.create_lifecycle_publisher(Image, "pseudo_ir", qos),
            "fused": self.create_lifecycle_publisher(Image, "fused", qos),
            "diagnostics": self.create_publisher(DiagnosticArray, "/diagnostics", 10),
        }
        chosen = self._fuser.deployment.describe() if self._fuser.deployment else self._fuser.backend.describe()
        self.get_logger().info(f"configured: {chosen}, text encoder {text.encoder}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._slot = FrameSlot()
        self._stats = NodeStats()
        # the thread keeps its own slot, Fuser and publishers: a late one never touches the next activation's
        self._worker = threading.Thread(target=self._work, args=(self._slot, self._fuser, dict(self._outputs)),
                                        name="mnm-inference", daemon=True)
        self._worker.start()
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # keeps ticking under use_sim_time without /clock
        self._input_timers = [self.create_timer(self._node_cfg.diagnostics_period_s, self._publish_diagnostics,
                                                clock=steady)]
        if self._node_cfg.input_type == "auto":
            self._input_timers.append(self.create_timer(0.5, self._detect_input_type, clock=steady))
            self._detect_input_type()
        else:
            self._subscribe(self._node_cfg.input_type)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self, wait_s: float = LIFECYCLE_WAIT_S) -> bool:
        """Stop the input and the inference thread, free the Fuser and publishers; safe to call twice.

        Returns False when an inference was still running after `wait_s`: its thread ends after that frame
        (publishing nothing), or with the process.
        """
        stopped = self._stop_input(wait_s)
        self._release()
        return stopped

    def _stop_input(self, wait_s: float = LIFECYCLE_WAIT_S) -> bool:
        """Unsubscribe, close the slot and wait up to `wait_s` for the inference thread; True once it ended."""
        for timer in self._input_timers:
            self.destroy_timer(timer)
        self._input_timers = []
        if self._input_sub is not None:
            self.destroy_subscription(self._input_sub)
            self._input_sub = None
        self._input_type = ""
        self._slot.close()
        worker, self._worker = self._worker, None
        if worker is None:
            return True
        worker.join(timeout=wait_s)
        if worker.is_alive():
            message = f"an inference is still running after {wait_s:.1f} s; not waiting for it"
            if self.context.ok():
                self.get_logger().warning(message)
            else:  # Ctrl-C has shut the context down: the node's logger can no longer reach /rosout
                LOGGER.warning(message)
            return False
        return True

    def _release(self) -> None:
        for name, publisher in self._outputs.items():
            if name == "diagnostics":
                self.destroy_publisher(publisher)
            else:
                self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        if self._fuser is not None:
            self._fuser.close()
            self._fuser = None

    # input ------------------------------------------------------------------------------------

    def _detect_input_type(self) -> None:
        """input_type auto: subscribe with the type of the first publisher seen on the input topic."""
        if self._input_sub is not None:
            return
        topic = self.resolve_topic_name("image")
        types = {info.topic_type for info in self.get_publishers_info_by_topic(topic)}
        known = sorted(t for t in types if t in INPUT_TYPES)
        if known:
            self._subscribe(INPUT_TYPES[known[0]])
        elif types and self._log_strings.admit(f"type:{topic}") is not None:
            found = shown(", ".join(sorted(types)))
            self.get_logger().error(f"{topic} carries {found}; mnm reads {sorted(INPUT_TYPES)}")

    def _subscribe(self, input_type: str) -> None:
        compressed = input_type == "compressed"
        qos = make_qos(self._qos_cfg.reliability, self._qos_cfg.depth)
        self._input_sub = self.create_subscription(
            CompressedImage if compressed else Image, "image",
            self._on_compressed if compressed else self._on_image, qos,
            event_callbacks=SubscriptionEventCallbacks(message_lost=self._on_lost))
        self._input_type = input_type
        self.get_logger().info(f"subscribed to {self._input_sub.topic_name} ({input_type})")

    def _on_image(self, msg: Image) -> None:
        received = time.monotonic()
        self._stats.count_received()
        try:  # O(1) checks (size bound included) and a view into msg.data; 16-bit and YUV frames are converted
            frame = image_to_frame(msg, self._node_cfg.max_frame_pixels)
        except FrameError as exc:
            self._reject(exc)
            return
        self._slot.put((msg.header, lambda: frame, received))

    def _on_compressed(self, msg: CompressedImage) -> None:
        received = time.monotonic()
        self._stats.count_received()
        try:  # the codec and the size its header announces; decoded by the worker
            check_compressed(msg, self._node_cfg.max_frame_pixels)
        except FrameError as exc:
            self._reject(exc)
            return
        self._slot.put((msg.header, lambda: decode_to_frame(msg.data), received))

    def _on_lost(self, info) -> None:
        """The middleware lost frames on their way here (e.g. larger than the transport carries)."""
        self._stats.count_lost(int(info.total_count_change))
        if self._log_kinds.admit("lost", REJECT_LOG_PERIOD_S) is not None:
            self.get_logger().warning(f"{info.total_count} input frames lost in transport before reaching the node; "
                                      "frames larger than the middleware carries are lost this way (docs/ros.md, "
                                      "Large images)")

    def _reject(self, exc: InputError) -> None:
        """Count a bad frame; log each unknown encoding once and other kinds at most every 10 s (bounded)."""
        kind = getattr(exc, "kind", "input")
        count = self._stats.count_rejected(kind)
        if kind == "encoding":
            key = self._log_strings.admit(f"{kind}:{exc}")
        else:
            key = self._log_kinds.admit(kind, REJECT_LOG_PERIOD_S)
        if key is not None:
            more = "; more distinct problems are counted, not logged" if key == LogOnce.OVERFLOW else ""
            self.get_logger().warning(f"frame rejected ({kind}, {count} so far): {str(exc)[:ERROR_CHARS]}{more}")

    def _fail(self, stage: str, exc: Exception) -> None:
        """Count a frame that failed in `stage`; log each kind (stage and exception type) once, as an error."""
        count = self._stats.count_failed(stage)
        if self._log_kinds.admit(f"failed:{stage}:{type(exc).__name__}") is not None:
            self.get_logger().error(f"a frame failed in {stage} ({count} so far in {stage}; the node goes on with the "
                                    f"next frame): {type(exc).__name__}: {str(exc)[:ERROR_CHARS]}")

    # inference thread -------------------------------------------------------------------------

    def _work(self, slot: FrameSlot[Pending], fuser: Fuser, outputs: dict[str, object]) -> None:
        while (pending := slot.take()) is not None:
            self._serve(pending, fuser, outputs, slot)

    def _serve(self, pending: Pending, fuser: Fuser, outputs: dict[str, object], slot: FrameSlot[Pending]) -> None:
        """One frame: decode, infer, publish. Nothing raised here ends the inference thread."""
        header, make_frame, received = pending
        stage = "inference"
        try:
            frame = make_frame()
            result = fuser.process(frame.image, frame.layout)
            stage = "output"
            messages = {"pseudo_ir": array_to_image(result.pseudo_ir, "mono8", header),
                        "fused": fused_to_image(result.fused, frame, header)}
            stage = "publish"
            for name, msg in messages.items():
                outputs[name].publish(msg)  # type: ignore[attr-defined]
        except InputError as exc:
            self._reject(exc)
            return
        except Exception as exc:  # keep serving: count it, log it once per kind, go on with the next frame
            if not slot.closed and self.context.ok():  # else the node is stopping: nothing left to report
                self._fail(stage, exc)
            return
        self._stats.count_processed((time.monotonic() - received) * 1e3, result.timings_ms["inference"])

    # diagnostics ------------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        if self._fuser is None or "diagnostics" not in self._outputs:
            return
        modulation = self._fuser.modulation_source.current()
        info = {
            "backend": self._fuser.backend.describe(),
            "input_topic": self.resolve_topic_name("image"),
            "input_type": self._input_type or "waiting for a publisher",
            "modulation_source": modulation.source,
            "modulation_age_s": f"{modulation.age_s():.1f}",
        }
        if self._fuser.deployment is not None:
            info.update(self._fuser.deployment.as_info())
        info.update({f"rejected_{kind}": str(n) for kind, n in self._stats.rejected.items()})
        info.update({f"failed_{stage}": str(n) for stage, n in self._stats.failed.items()})
        info.update({f"text_{k}": str(v) for k, v in self._fuser.modulation_source.stats().items()})
        values = self._stats.snapshot(self._slot.dropped)
        array = build_diagnostics(f"{self.get_fully_qualified_name()}: fusion", self.get_clock().now().to_msg(),
                                  values, info)
        self._outputs["diagnostics"].publish(array)  # type: ignore[attr-defined]


def exit_code(failure: BaseException | None) -> int:
    """Exit code for a failed start-up: lets callers (the demo) fall back to another backend or encoder."""
    if isinstance(failure, BackendError):
        return EXIT_BACKEND
    text_import = isinstance(failure, ImportError) and (failure.name or "").startswith("mnm_core.text")
    if isinstance(failure, TextEncoderError) or text_import:
        return EXIT_TEXT
    return EXIT_FAILED


def exit_now(code: int) -> None:
    """End the process at once, without interpreter finalisation.

    Used when an inference is still running at exit: a Python thread cannot be stopped, and finalising
    the interpreter under a thread that is inside torch or onnxruntime waits for it (seconds to minutes)
    and then aborts in a C++ destructor ("terminate called without an active exception"). The node and
    the ROS context are already shut down; only the running computation is abandoned.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(args: list[str] | None = None) -> int:
    """Entry point of the `fuse_node` executable (`ros2 run mnm_ros fuse_node --ros-args ...`).

    Ctrl-C stops the node within about SHUTDOWN_WAIT_S, even in the middle of a long inference.
    """
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    rclpy.init(args=args)
    node = None
    try:
        node = FuseNode()
        if node.get_parameter("autostart").value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                return exit_code(node.failure)
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                return EXIT_FAILED
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stopped = node.close(SHUTDOWN_WAIT_S) if node is not None else True
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        if not stopped:
            exit_now(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
