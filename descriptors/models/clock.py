"""Time spent in forward passes (wall clock, and CUDA events on a GPU): the GPU-busy share of ``monoculture
embed``."""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ForwardClock", "union_seconds"]


def union_seconds(spans: Iterable[tuple[float, float]]) -> float:
    """Length of the union of intervals ``(start, end)`` (s): overlapping time counted once."""
    busy, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        busy += b - max(a, end)
        end = b
    return float(busy)


class ForwardClock:
    """Time spent in forward passes: wall-clock intervals, and on a GPU the intervals between CUDA events
    recorded on each forward's stream before it copies its batch in and after it copies the features out.

    Why hand-written: torch's profiler records every kernel (far more than needed, and slows the run); two
    events per forward cost microseconds. The events give when the GPU reached the start and the end of each
    forward's work on its stream, on one clock (offsets from a reference event, mapped to ``time.perf_counter``);
    their union is the time the GPU had a forward in flight (an upper bound of kernel time: a stream waiting
    for the CPU to launch its next kernel counts as busy).

    Parameters
    ----------
    device : str
        ``cpu`` or ``cuda[:n]``; on the CPU only wall-clock intervals are kept.
    """

    def __init__(self, device: str = "cpu"):
        import threading
        import time

        self.cuda = str(device).startswith("cuda")
        self._lock = threading.Lock()
        self._wall: list[tuple[float, float]] = []
        self._events: list = []
        self._ref = None
        if self.cuda:
            import torch

            torch.cuda.synchronize(device)
            self._ref = torch.cuda.Event(enable_timing=True)
            self._ref.record()
            torch.cuda.synchronize(device)
        self._ref_wall = time.perf_counter()

    def start(self) -> tuple:
        """Mark the start of a forward on this thread's current stream; pass the result to :meth:`stop`."""
        import time

        event = None
        if self.cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
        return time.perf_counter(), event

    def stop(self, token: tuple) -> None:
        """Mark the end of the forward started with ``token``."""
        import time

        start_wall, start_event = token
        end_event = None
        if self.cuda:
            import torch

            end_event = torch.cuda.Event(enable_timing=True)
            end_event.record()
        with self._lock:
            self._wall.append((start_wall, time.perf_counter()))
            if self.cuda:
                self._events.append((start_event, end_event))

    def intervals(self) -> list[tuple[float, float]]:
        """(start, end) of every forward in ``time.perf_counter`` seconds: GPU event times on a GPU (waits for
        the device), wall-clock times on the CPU."""
        if not self.cuda:
            return list(self._wall)
        import torch

        torch.cuda.synchronize()
        ref, base = self._ref, self._ref_wall
        return [(base + ref.elapsed_time(a) / 1e3, base + ref.elapsed_time(b) / 1e3) for a, b in self._events]

    def summary(self, since: float | None = None) -> dict:
        """Totals of the forwards.

        Parameters
        ----------
        since : float, optional
            ``time.perf_counter()`` origin of the returned times (default: when the clock was made).

        Returns
        -------
        dict
            ``n_forward``; ``forward_sum_s`` (sum of the forwards' durations, s; above the busy time when
            forwards overlap); ``forward_busy_s`` (length of the union of the intervals, s); ``first_forward_s``
            and ``last_forward_s`` (start of the first and end of the last, s after ``since``; None without
            forwards); ``timer`` (``cuda_events`` or ``wall``).
        """
        spans = sorted(self.intervals())
        origin = self._ref_wall if since is None else since
        return {
            "n_forward": len(spans),
            "forward_sum_s": float(sum(b - a for a, b in spans)),
            "forward_busy_s": union_seconds(spans),
            "first_forward_s": float(spans[0][0] - origin) if spans else None,
            "last_forward_s": float(max(b for _, b in spans) - origin) if spans else None,
            "timer": "cuda_events" if self.cuda else "wall",
        }
