"""The networks of the method: stage 1 (JSRL) and stage 2 (VGII + AFRI)."""

from mnm_core.model.jsrl import JsrlModel, JsrlOutput
from mnm_core.model.vgii import FastPathOutput, VgiiModel

__all__ = ["FastPathOutput", "JsrlModel", "JsrlOutput", "VgiiModel"]
