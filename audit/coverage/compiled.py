"""The audit's compiled (numba) kernels: which ones a run uses, whether numba's cache holds them, and a warm-up
process that compiles the missing ones while the data are read.

Two kernels are compiled by the default audit, each for one signature:

* ``"map"``: :func:`~._map_sgd.optimize` (and ``_clip``, which it calls), the map's optimisation
  (:func:`~.map_layout.umap_layout`);
* ``"quests"``: ``quests.entropy.kernel_sum`` (``parallel=True``, ``cache=True``), the kernel of the entropy
  cross-check (:meth:`~.chemical_space.ChemicalSpaceCoverage._entropy`): two C-contiguous float64
  matrices, a float bandwidth and an int batch size.

Both are cached by numba (``cache=True``: ``__pycache__`` beside the source, the user's cache folder when
that is read-only, or ``NUMBA_CACHE_DIR``). With an empty cache, compiling them took 0.7 s and 2.9 s of CPU
(2 cores shared, 2026-12-06) in the process that first used them, after the frames had been read: most of
what a first audit paid beyond a later one. :func:`warm_up` starts a second Python process at the start of
the run that compiles, with numba's own ``Dispatcher.compile``, exactly the signatures the audit will call
(the types of the arguments of :func:`example_arguments`) for each kernel numba's cache lacks; the audit
reads and describes the frames meanwhile, and :func:`wait` (called just before a kernel's first use) blocks
until the warm-up has written that kernel into the cache, so the audit loads it instead of compiling it. The
results are the same either way: the compiled code is the same, only where it is compiled changes. When the
cache already holds every kernel, no process is started; when the warm-up fails, the audit compiles the
kernel itself, as before.

The process is started only while a core is free (1-minute load average <= cores - 0.5): on a machine
whose every core is busy it would only take CPU from the audit. ``MONOCULTURE_WARMUP=never`` starts none (the
audit compiles what it needs itself, as before), ``MONOCULTURE_WARMUP=always`` starts it whatever the load.
``python -m monoculture.audit.coverage.compiled [NAME...]`` compiles the named kernels (default: all) into
numba's cache and prints ``ready NAME`` after each (``make install`` runs it once).
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

__all__ = ["KERNELS", "kernels_for", "cached", "compile_kernel", "warm_up", "wait", "active", "WarmUp"]

#: Every compiled kernel of the audit, in the order the audit first uses them (the map's thread starts before
#: the main thread reaches the cross-check), which is the order the warm-up compiles them.
KERNELS = ("map", "quests")

#: Longest wait (s) for the warm-up process before the audit compiles the kernel itself.
WAIT_LIMIT_S = 300.0


def kernels_for(descriptor: str | None, umap: bool, quests_crosscheck: bool) -> list[str]:
    """The kernels an audit with these options uses: none without a descriptor (no chemical-space analysis),
    ``"quests"`` with the entropy cross-check, ``"map"`` with the map."""
    if not descriptor or descriptor == "none":
        return []
    return [name for name, on in (("map", umap), ("quests", quests_crosscheck)) if on]


def _dispatcher(name: str):
    if name == "quests":
        from quests.entropy import kernel_sum

        return kernel_sum
    if name == "map":
        return _map_module().optimize
    raise ValueError(f"unknown kernel {name!r}; known: {', '.join(KERNELS)}")


def _map_module():
    """:mod:`._map_sgd`; in the warm-up process (this file run as a script, see :class:`WarmUp`) loaded from its
    file under its own name without importing its package (pandas, pyarrow, every analyzer: about 0.5 s of
    CPU). numba keys its cache by the source file, the function's name and bytecode: the same entry either way."""
    name = "monoculture.audit.coverage._map_sgd"
    if __package__ or name in sys.modules:
        import importlib

        return importlib.import_module(name)
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), "_map_sgd.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def example_arguments(name: str) -> tuple:
    """Small arguments of the types the audit passes to kernel ``name`` (they define its signature).

    ``"quests"``: ``kernel_sum(x, x, h, batch_size)`` as ``quests.entropy.entropy`` calls it from the
    cross-check (x: (n, d) C-contiguous float64; h: float; batch_size: int). ``"map"``: ``optimize(emb, head,
    tail, epochs_per_sample, n_epochs, a, b, gamma, initial_alpha, negative_sample_rate, seed)`` as
    :func:`~.map_layout.umap_layout` calls it.
    """
    import numpy as np

    if name == "quests":
        x = np.zeros((2, 2))
        return (x, x, 1.0, 2000)
    if name == "map":
        return (np.zeros((2, 2)), np.zeros(1, np.int64), np.ones(1, np.int64), np.ones(1), 1, 1.0, 1.0, 1.0, 1.0,
                5.0, 0)
    raise ValueError(f"unknown kernel {name!r}; known: {', '.join(KERNELS)}")


def _signature(name: str) -> tuple:
    from numba import typeof

    return tuple(typeof(a) for a in example_arguments(name))


def cached(name: str) -> bool:
    """Whether numba's cache holds kernel ``name`` for the audit's signature, for this source and this CPU.

    Reads numba's cache index (``Cache._index_key`` / ``IndexDataCacheFile._load_index``: the key numba
    itself looks up before compiling). False when the cache cannot be read or numba's internals differ.
    """
    try:
        disp = _dispatcher(name)
        cache = disp._cache
        key = cache._index_key(_signature(name), disp.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # numba without these internals, an unreadable cache: treat as not cached
        return False


def compile_kernel(name: str) -> None:
    """Compile kernel ``name`` for the audit's signature in this process (numba saves it to its cache)."""
    _dispatcher(name).compile(_signature(name))


class WarmUp:
    """A process compiling ``names`` into numba's cache (see the module docstring).

    Parameters
    ----------
    names : list of str
        Kernels to compile, in this order.
    """

    def __init__(self, names: list[str]):
        self.names = list(names)
        self.ready: set[str] = set()
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self.waited_s = 0.0
        # this file run as a script, not `-m monoculture.audit.coverage.compiled`: importing the package first
        # (pandas, pyarrow, the analyzers: about 0.5 s) would delay the first compilation, which needs only
        # quests and numba; runpy.run_path leaves sys.path as it is (a script's folder on sys.path would let
        # this package's modules shadow top-level ones)
        code = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
        self.proc = subprocess.Popen([sys.executable, "-c", code, os.path.abspath(__file__), *self.names],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     bufsize=0)
        self._fd = self.proc.stdout.fileno()
        self._buf = b""

    def wait(self, name: str, limit_s: float = WAIT_LIMIT_S) -> bool:
        """Block until kernel ``name`` is in the cache (True) or the process ended or hung without it (False)."""
        with self._lock:  # the map's thread and the main thread may both wait
            t0 = time.perf_counter()
            try:
                return self._wait(name, limit_s)
            finally:
                self.waited_s += time.perf_counter() - t0

    def describe(self) -> dict:
        """``kernels`` compiled by the process, those ``ready`` when used, ``waited_s``: how long the audit
        blocked on it (s, wall); recorded under the audit's ``run.numba_warmup``."""
        return {"kernels": list(self.names), "ready": [n for n in self.names if n in self.ready],
                "waited_s": round(self.waited_s, 3)}

    def _wait(self, name: str, limit_s: float) -> bool:
        if name in self.ready or name not in self.names:
            return name in self.ready
        deadline = self.started + limit_s
        while True:
            line = self._line(deadline)
            if line is None:  # the process ended, or hung past the limit
                self.close()
                break
            word, _, done = line.strip().partition(" ")
            if word == "ready":
                self.ready.add(done)
                if done == name:
                    return True
        return name in self.ready

    def _line(self, deadline: float) -> str | None:
        """The process's next output line; None at its end or at ``deadline`` (``time.perf_counter``)."""
        if self._fd is None:
            return None
        while b"\n" not in self._buf:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not select.select([self._fd], [], [], remaining)[0]:
                return None
            chunk = os.read(self._fd, 4096)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def close(self) -> None:
        """Stop the process if it still runs (numba writes each cache file whole, so none is left half written)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._fd is not None:
            self.proc.stdout.close()
            self._fd = None


_ACTIVE: WarmUp | None = None


@contextmanager
def warm_up(names: list[str]):
    """Start a :class:`WarmUp` for the kernels of ``names`` numba's cache lacks, for the duration of the block.

    Yields the :class:`WarmUp` (None when every kernel is cached, when a warm-up is already active, or when
    no process can be started). Nested blocks reuse the outer one. On leaving the block that started it, a
    process still running is stopped.
    """
    global _ACTIVE
    if (_ACTIVE is not None or not names or not sys.executable or os.name == "nt"  # select() needs POSIX pipes
            or not _wanted()):
        yield None
        return
    missing = [n for n in names if not cached(n)]
    if not missing:
        yield None
        return
    try:
        _ACTIVE = WarmUp(missing)
    except OSError:
        yield None
        return
    try:
        yield _ACTIVE
    finally:
        _ACTIVE.close()
        _ACTIVE = None


def active() -> WarmUp | None:
    """The warm-up of the running audit (None when none was started)."""
    return _ACTIVE


def _wanted() -> bool:
    """``MONOCULTURE_WARMUP``: ``never``, ``always``, or ``auto`` (default): only while a core is free, i.e. the
    1-minute load average is at most the number of cores minus 0.5. With every core busy the second process
    only takes CPU from the audit (measured at load 4 on 2 cores: 0.5-1 s more CPU, no shorter run)."""
    mode = os.environ.get("MONOCULTURE_WARMUP", "auto").strip().lower()
    if mode in ("never", "0", "no", "off"):
        return False
    if mode in ("always", "1", "yes", "on"):
        return True
    try:
        return os.getloadavg()[0] <= (os.cpu_count() or 1) - 0.5
    except OSError:  # no load average on this platform
        return True


def wait(name: str) -> None:
    """Before the first use of kernel ``name``: wait for the active warm-up to have cached it (if any)."""
    if _ACTIVE is not None:
        _ACTIVE.wait(name)


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(KERNELS)
    for name in names:
        compile_kernel(name)
        print(f"ready {name}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
