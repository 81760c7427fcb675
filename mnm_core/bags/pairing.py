"""Pairing visible and thermal frames by header stamp within a tolerance."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Pairing:
    """The thermal partner of each visible frame, by index into the two stamp lists."""

    partner: list[int | None]
    """partner[i] = index of the thermal frame paired with visible frame i, or None."""
    offsets_ns: list[int | None] = field(default_factory=list)
    """Signed stamp difference (thermal − visible, ns) of each pair, or None."""
    nearest_unpaired_ns: list[int] = field(default_factory=list)
    """For each unpaired visible frame with any thermal frame at all: |offset| to the nearest one (ns)."""

    @property
    def paired(self) -> int:
        return sum(p is not None for p in self.partner)

    @property
    def unpaired(self) -> int:
        return len(self.partner) - self.paired

    def describe(self, tolerance_ns: int) -> str:
        """One line for the log, with a hint when frames are left unpaired."""
        text = f"{self.paired} of {len(self.partner)} visible frames have a thermal partner within " \
               f"{tolerance_ns / 1e6:g} ms"
        if self.nearest_unpaired_ns:
            text += (f"; the unpaired ones are {min(self.nearest_unpaired_ns) / 1e6:.1f}–"
                     f"{max(self.nearest_unpaired_ns) / 1e6:.1f} ms from the nearest thermal frame "
                     "(raise --tolerance-ms if the cameras are not synchronised)")
        return text


def pair_by_stamp(vis_stamps: Sequence[int], ir_stamps: Sequence[int], tolerance_ns: int) -> Pairing:
    """Pair each visible stamp with the nearest thermal stamp within `tolerance_ns`, one to one.

    Candidate pairs are taken closest first, so a thermal frame goes to the visible frame nearest to it
    and is never used twice. Stamps are ns; the lists need not be sorted.
    """
    order = sorted(range(len(ir_stamps)), key=lambda j: ir_stamps[j])
    sorted_ir = [ir_stamps[j] for j in order]
    candidates: list[tuple[int, int, int]] = []
    nearest: dict[int, int] = {}
    for i, stamp in enumerate(vis_stamps):
        k = bisect.bisect_left(sorted_ir, stamp)
        lo = bisect.bisect_left(sorted_ir, stamp - tolerance_ns, 0, k)
        hi = bisect.bisect_right(sorted_ir, stamp + tolerance_ns, k)
        for m in range(lo, hi):
            candidates.append((abs(sorted_ir[m] - stamp), i, order[m]))
        near = [abs(sorted_ir[m] - stamp) for m in (k - 1, k) if 0 <= m < len(sorted_ir)]
        if near:
            nearest[i] = min(near)
    partner: list[int | None] = [None] * len(vis_stamps)
    used: set[int] = set()
    for _, i, j in sorted(candidates):
        if partner[i] is None and j not in used:
            partner[i] = j
            used.add(j)
    offsets = [None if j is None else ir_stamps[j] - vis_stamps[i] for i, j in enumerate(partner)]
    unpaired_nearest = [nearest[i] for i, j in enumerate(partner) if j is None and i in nearest]
    return Pairing(partner, offsets, unpaired_nearest)


__all__ = ["Pairing", "pair_by_stamp"]
