"""Decoding strangers' photos in worker processes, each task under a CPU and a memory limit, so
that one photo's cost is paid by that photo alone (`geoloc serve`).

Why processes, not threads: a decoder given hostile bytes can run for a minute (a progressive
JPEG of thousands of scans), hold the GIL all along (Pillow's BMP RLE decoder and its JPEG marker
parsing are pure Python) or allocate gigabytes (a 38-byte lossless WebP declaring 6000x6000
pixels decodes to 144 MB). In a thread of the server, each of these stalls or bloats every other
request, and the memory stays with the server after the photo is gone. In a worker process:

- CPU: each task starts a CPU-time timer (``ITIMER_PROF``, ``Limits.cpu_s``) and sets
  ``resource.RLIMIT_CPU`` (soft limit = the CPU time the worker has used + ``cpu_s``, rounded up,
  + 1 s: the kernel counts whole seconds); SIGPROF or SIGXCPU ends a worker past either, in C code
  too, since neither signal is handled. A wall-clock backstop in the parent (``Limits.wall_s``)
  kills a worker that neither finishes nor uses CPU.
- Memory: ``resource.RLIMIT_AS`` = the worker's address space after its imports + ``Limits.memory_mb``
  (measured with Pillow: a PNG over it raises MemoryError; libwebp refuses its decoder, which
  RLIMIT_DATA does the same way, but RLIMIT_AS also bounds what a C library maps directly).
- A worker past a limit, or one that died, is replaced (a fresh interpreter, ``Worker``, never a
  fork of a server holding TensorFlow's threads); a worker whose resident
  size grew past ``Limits.recycle_mb`` over its size after start (Pillow's and malloc's kept
  arenas) is replaced after its answer, so the memory a large photo needed goes back to the OS.
- Niceness: workers run at ``Limits.nice`` so the event loop and the model thread (niceness 0)
  keep their CPU share on a machine with two cores.
- Workers import only this module (``data_pipelines.images``: Pillow, numpy), never TensorFlow:
  tens of MB each. Each calls ``child_processes.die_with_parent`` first, so none outlives the server.

``concurrent.futures.ProcessPoolExecutor`` does not fit: one worker that dies (the CPU limit's
SIGXCPU, the OOM killer) breaks the whole executor, and every pending task fails with
BrokenProcessPool. Here each worker is a process of its own with its own pipe, a task goes to an
idle worker of its lane, and a dead worker is replaced without touching the others.

Lanes: the pool keeps separate groups of workers (``DecodePool(lanes={"fast": 2, "slow": 1})``),
and the caller picks the lane of each task (``photo_route``: from the photo's header, before any
decoding). Several expensive photos arriving together would otherwise occupy every worker for up
to ``cpu_s`` each, and a valid photo would wait behind them; with a fast lane that only cheap
photos enter, an attacker can fill only the expensive lane, whose workers also run at a lower
priority.

The task is any top-level function (pickled by reference) and its arguments; its result comes
back pickled. ``BadImage`` crosses the pipe as it is (a ``copyreg`` reducer below); another
exception that does not pickle comes back as a RuntimeError with its type and message.
"""

from __future__ import annotations

import copyreg
import ctypes
import dataclasses
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
from typing import Any, Callable

from data_pipelines import child_processes, images

log = logging.getLogger(__name__)

MiB = 1 << 20
#: How long a new worker may take to start (a fresh interpreter importing Pillow and numpy), s.
START_TIMEOUT_S = 60.0
#: A photo is not cheap when its file is larger than this many bytes per declared pixel (plus
#: 64 KiB for metadata): such bytes do not describe pixels (padding, segments) and cost time.
MAX_CHEAP_BYTES_PER_PIXEL = 4


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one task may cost a worker."""

    cpu_s: float = 10.0  # CPU time per task, s
    memory_mb: int = 512  # memory beyond the worker's size after its imports, MB
    recycle_mb: int = 64  # a worker whose RSS grew past its start by this much is replaced
    nice: int = 10  # added to the workers' niceness

    @property
    def wall_s(self) -> float:
        """The parent's backstop: a worker that has not answered within this many seconds of
        wall-clock time is killed (a niced worker on a busy machine gets a fraction of a core)."""
        return 4.0 * self.cpu_s + 5.0


class OverLimit(Exception):
    """A task that went over ``limit`` ("cpu" or "memory"); its worker was replaced."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit


class WorkerDied(Exception):
    """A worker ended during a task for another reason (a crash in a decoder, a kill)."""


class Busy(Exception):
    """No worker of the lane became free within the caller's wait."""


# BadImage's constructor takes (reason, message); pickle would call it with the message alone.
copyreg.pickle(images.BadImage, lambda error: (images.BadImage, (error.reason, str(error))))


# ---------------------------------------------------------------------- photo routing
@dataclasses.dataclass(frozen=True)
class PhotoRoute:
    """What a photo's header declares (format None: not found in the first bytes) and whether
    the photo is cheap to decode."""

    format: str | None
    width: int
    height: int
    cheap: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height


def photo_route(data: bytes, cheap_pixels: int) -> PhotoRoute:
    """The declared size of ``data`` read from its first bytes, without Pillow (whose JPEG parser
    is Python code and would run in the caller's thread: ``images.declared_size``, the decoder's
    own bounded reading), and whether it is cheap: a supported format with at most
    ``cheap_pixels`` declared pixels, a file no larger than ``MAX_CHEAP_BYTES_PER_PIXEL`` per
    pixel, and plain (a JPEG with few scans and markers, no BMP run-length coding)."""
    found = images.declared_size(data)
    if found is None:
        return PhotoRoute(None, 0, 0, False)
    kind, width, height, plain = found
    pixels = width * height
    cheap = plain and 0 < pixels <= cheap_pixels
    cheap = cheap and len(data) <= MAX_CHEAP_BYTES_PER_PIXEL * pixels + 64 * 1024
    return PhotoRoute(kind, width, height, cheap)


# ---------------------------------------------------------------------- the worker process
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def release_free_memory() -> None:
    """Gives malloc's free pages back to the OS (glibc's ``malloc_trim``; nothing elsewhere): after
    large buffers are freed, glibc keeps them in its heap, so the process's RSS stays high."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a RuntimeError naming its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any failure to pickle
        return RuntimeError(f"{type(error).__name__}: {error}"[:500])


def _within(soft: int, hard: int) -> int:
    return soft if hard == resource.RLIM_INFINITY else min(soft, hard)


def worker_main(conn, limits: Limits, parent: int | None = None) -> None:
    """A worker's life: dies with its parent, lowers its priority, sets its memory limit, says it
    is ready (with its RSS, KiB), then answers tasks ``(function, args)`` with
    ``(kind, value, rss_kib, retiring)``, kind "ok", "error" or "memory", until its pipe closes
    or it retires (grown past ``recycle_mb``, or after a MemoryError)."""
    child_processes.die_with_parent(parent=parent)
    os.nice(limits.nice)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise dump a core
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    size = _status_kib("VmSize") * 1024
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_within(size + limits.memory_mb * MiB, as_hard), as_hard))
    start_rss = _status_kib("VmRSS")
    conn.send(("ready", None, start_rss, False))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        function, args = task
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = usage.ru_utime + usage.ru_stime
        # The kernel's limit counts whole seconds of the process's total: one more than the task's
        # share as a backstop; the CPU-time timer ends the task at its limit to the millisecond.
        resource.setrlimit(
            resource.RLIMIT_CPU, (_within(math.ceil(used + limits.cpu_s) + 1, cpu_hard), cpu_hard)
        )
        signal.setitimer(signal.ITIMER_PROF, limits.cpu_s)  # SIGPROF's default action: exit
        answer: tuple[str, Any]
        try:
            answer = ("ok", function(*args))
        except MemoryError:
            answer = ("memory", None)
        except Exception as error:  # noqa: BLE001 - the caller's to judge
            answer = ("error", _portable(error))
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
        task = args = None
        release_free_memory()
        rss = _status_kib("VmRSS")
        retiring = answer[0] == "memory" or rss > start_rss + limits.recycle_mb * 1024
        try:
            conn.send((*answer, rss, retiring))
        except MemoryError:
            conn.send(("memory", None, rss, True))
            return
        if retiring:
            return


# ---------------------------------------------------------------------- the parent's side
#: What a worker runs: the parent's module path, then this module's ``worker_entry``.
_BOOT = (
    "import os, sys; sys.path[:0] = sys.argv[1].split(os.pathsep); "
    "from data_pipelines.decode_pool import worker_entry; worker_entry()"
)


def worker_entry() -> None:
    """A worker's ``__main__`` (``_BOOT``): its pipe is file descriptor ``argv[2]``, its limits
    ``argv[3:7]``, the server's process id ``argv[7]`` (``die_with_parent``: a server that dies
    while the worker still imports must not leave it behind)."""
    cpu_s, memory_mb, recycle_mb, nice, parent = sys.argv[3:8]
    limits = Limits(float(cpu_s), int(memory_mb), int(recycle_mb), int(nice))
    worker_main(multiprocessing.connection.Connection(int(sys.argv[2])), limits, int(parent))


class Worker:
    """One worker process and the parent's end of its pipe.

    Started as a fresh interpreter (``python -c``, what ``multiprocessing``'s spawn does, without
    spawn's re-import of the parent's ``__main__``: the server's command-line module would be
    imported again in every worker) that imports only this module."""

    def __init__(self, lane: str, limits: Limits):
        ours, theirs = socket.socketpair()
        argv = [
            str(limits.cpu_s),
            str(limits.memory_mb),
            str(limits.recycle_mb),
            str(limits.nice),
            str(os.getpid()),
        ]
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, os.pathsep.join(sys.path), str(theirs.fileno()), *argv],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        self.conn = multiprocessing.connection.Connection(ours.detach())
        self.lane = lane
        self.rss_kib = 0

    def wait_ready(self, timeout_s: float) -> "Worker":
        try:
            if not self.conn.poll(timeout_s):
                raise EOFError
            self.rss_kib = self.conn.recv()[2]
        except (EOFError, OSError):
            self.kill()
            raise WorkerDied(
                f"a decode worker did not start within {timeout_s:g} s (status {self.process.returncode})"
            ) from None
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.conn.close()

    def retire(self) -> None:
        """Waits for a worker that said it retires to exit (it does so after its answer)."""
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class DecodePool:
    """Worker processes in lanes (``{"fast": 2, "slow": 1}``); ``run(lane, function, *args)``
    runs a task on an idle worker of ``lane`` and returns its result (or raises its exception,
    ``OverLimit``, ``WorkerDied`` or ``Busy``). Thread-safe: call ``run`` from as many threads as
    you like; tasks beyond a lane's workers wait for one to become free."""

    def __init__(self, lanes: dict[str, int], limits: Limits):
        self.lanes, self.limits = dict(lanes), limits
        self._idle: dict[str, queue.Queue[Worker]] = {lane: queue.Queue() for lane in lanes}
        self._workers: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers replaced after a limit, a death or growth

    def start(self) -> "DecodePool":
        """Starts every worker (in parallel) and returns when all are ready."""
        started = [Worker(lane, self.limits) for lane, count in self.lanes.items() for _ in range(count)]
        with self._lock:
            self._workers.update(started)
        for worker in started:
            worker.wait_ready(START_TIMEOUT_S)
            self._idle[worker.lane].put(worker)
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in workers:
            try:
                worker.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            worker.kill()

    def pids(self) -> list[int]:
        """The process ids of the current workers."""
        with self._lock:
            return [w.pid for w in self._workers]

    def run(self, lane: str, function: Callable[..., Any], *args: Any, wait_s: float = 60.0) -> Any:
        """``function(*args)`` in a worker of ``lane``; see the class docstring."""
        try:
            worker = self._idle[lane].get(timeout=wait_s)
        except queue.Empty:
            raise Busy(f"no {lane} decode worker became free within {wait_s:g} s") from None
        try:
            message = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            self._idle[lane].put(worker)
            raise
        try:
            worker.conn.send_bytes(message)
            del message
            if not worker.conn.poll(self.limits.wall_s):
                self._replace(worker, "went over its wall-clock backstop")
                raise OverLimit("cpu", f"not decoded within {self.limits.wall_s:g} s of wall-clock time")
            kind, value, worker.rss_kib, retiring = worker.conn.recv()
        except (EOFError, OSError):
            try:
                code = worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self._replace(worker, f"ended with status {code}")
            if code in (-signal.SIGXCPU, -signal.SIGPROF):
                raise OverLimit("cpu", f"used more than {self.limits.cpu_s:g} s of CPU") from None
            raise WorkerDied(f"the decode worker ended during the task (exit status {code})") from None
        if retiring:
            self._replace(worker, f"retired at {worker.rss_kib // 1024} MiB" if kind != "memory" else "")
        else:
            self._idle[lane].put(worker)
        if kind == "ok":
            return value
        if kind == "memory":
            raise OverLimit("memory", f"needed more than {self.limits.memory_mb} MB")
        raise value

    def _replace(self, worker: Worker, why: str) -> None:
        """Ends ``worker`` and starts its successor in the background (the task that ended it is
        answered at once; the lane has one worker fewer for the successor's start, ~0.5 s)."""
        with self._lock:
            self._workers.discard(worker)
            self.replaced += 1
        if why:
            log.info("decode worker %s %s; starting another", worker.pid, why)
        threading.Thread(
            target=self._successor, args=(worker,), name="geoloc-decode-start", daemon=True
        ).start()

    def _successor(self, worker: Worker) -> None:
        worker.retire()
        with self._lock:
            if self._closed:
                return
            successor = Worker(worker.lane, self.limits)
            self._workers.add(successor)
        try:
            successor.wait_ready(START_TIMEOUT_S)
        except WorkerDied as error:
            log.error("%s; the %s lane has one worker fewer", error, worker.lane)
            with self._lock:
                self._workers.discard(successor)
            return
        self._idle[worker.lane].put(successor)
