"""Evaluation: one evaluator over frame sources (a folder of pairs for `mnm eval`, a bag for `mnm bag-eval`
in mnm_core.bags.evaluate), the methods it compares, and the folder front end."""

from mnm_core.evaluation.evaluator import (
    FUSED_KEYS,
    Evaluator,
    Sample,
    Sink,
    format_table,
    json_safe,
    mean_metrics,
    no_reference_metrics,
    result_keys,
    score,
    write_csv,
)
from mnm_core.evaluation.folder import EvalResult, FolderSink, evaluate, folder_samples
from mnm_core.evaluation.methods import (
    BASELINES,
    METHODS,
    Method,
    MethodOutput,
    ModelMethod,
    fuse_real_ir,
    fuse_visible,
)

__all__ = [
    "BASELINES",
    "FUSED_KEYS",
    "METHODS",
    "EvalResult",
    "Evaluator",
    "FolderSink",
    "Method",
    "MethodOutput",
    "ModelMethod",
    "Sample",
    "Sink",
    "evaluate",
    "folder_samples",
    "format_table",
    "fuse_real_ir",
    "fuse_visible",
    "json_safe",
    "mean_metrics",
    "no_reference_metrics",
    "result_keys",
    "score",
    "write_csv",
]
