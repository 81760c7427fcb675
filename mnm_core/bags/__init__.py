"""ROS 2 bags without ROS: read and write image topics (sqlite3, mcap), make bags from pairs or video,
and evaluate the frame pipeline on a bag (`mnm make-bag`, `mnm bag-eval`). Built on `rosbags`."""

from mnm_core.bags.evaluate import FUSED_TOPIC, PSEUDO_IR_TOPIC, BagEvalResult, evaluate_bag
from mnm_core.bags.make_bag import IR_TOPIC, VIS_TOPIC, MadeBag, make_bag_from_pairs, make_bag_from_video
from mnm_core.bags.pairing import Pairing, pair_by_stamp
from mnm_core.bags.reader import BagReader, Frame, RawMessage
from mnm_core.bags.writer import BagWriter

__all__ = [
    "FUSED_TOPIC",
    "IR_TOPIC",
    "PSEUDO_IR_TOPIC",
    "VIS_TOPIC",
    "BagEvalResult",
    "BagReader",
    "BagWriter",
    "Frame",
    "MadeBag",
    "Pairing",
    "RawMessage",
    "evaluate_bag",
    "make_bag_from_pairs",
    "make_bag_from_video",
    "pair_by_stamp",
]
