"""Child processes that never outlive their parent: ingestion's workers, the decode pool of
`geoloc serve`, Beam's local workers.

A process started with spawn keeps running when its parent is killed (kill -9, the OOM killer): it
is re-parented to init and goes on holding its memory, and the multiprocessing resource tracker
stays alive while any child holds its pipe. ``die_with_parent`` is called first thing in each child
(a pool's initializer, or a worker's main function): a daemon thread polls the parent's process id
and ends the child at once (``os._exit``) when it changes. Polling, not Linux's
``PR_SET_PDEATHSIG``: that signal fires when the parent *thread* that started the child ends,
which in a thread pool is long before the parent process does, and it does not exist on macOS.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
from typing import Callable

#: How often a child looks whether its parent is still alive, s.
PARENT_POLL_S = 0.5
#: Exit status of a child whose parent died.
ORPHANED = 70


def die_with_parent(poll_s: float = PARENT_POLL_S, parent: int | None = None) -> None:
    """Ends this process (status ``ORPHANED``) within ``poll_s`` of its parent's death. ``parent``:
    the process id the parent had when it started this child; without it, the current parent's,
    which is already init's if the parent died while this child was still starting up (importing,
    before it got here), so a parent that can pass its id should."""
    parent = os.getppid() if parent is None else parent
    _exit_when(lambda: os.getppid() != parent, poll_s, "die-with-parent")


def die_with_process(pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """Ends this process (status ``ORPHANED``) within ``poll_s`` of the end of process ``pid``, an
    ancestor that is not its parent: Beam's DirectRunner starts its SDK workers through a shell,
    which stays alive as long as the worker does. Nothing when ``pid`` is this process."""
    if pid == os.getpid():
        return

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's: cannot be ours
            return False
        return False

    _exit_when(gone, poll_s, "die-with-process")


def _exit_when(gone: Callable[[], bool], poll_s: float, name: str) -> None:
    """Ends this process (``ORPHANED``) at once if ``gone()``, else from a daemon thread within
    ``poll_s`` of the moment it becomes true."""
    if gone():
        os._exit(ORPHANED)

    def watch() -> None:
        while not gone():
            time.sleep(poll_s)
        os._exit(ORPHANED)

    threading.Thread(target=watch, name=name, daemon=True).start()


def spawn_pool(
    workers: int, initializer=None, initargs: tuple = ()
) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``workers`` processes started with spawn, not fork (the parent may hold TensorFlow
    threads, which fork breaks), each of which dies with its parent (``die_with_parent``) and then
    runs ``initializer(*initargs)``."""
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_child,
        initargs=(os.getpid(), initializer, initargs),
    )


def _start_child(parent: int, initializer, initargs: tuple) -> None:
    die_with_parent(parent=parent)
    if initializer is not None:
        initializer(*initargs)
