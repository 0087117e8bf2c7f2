"""SIGINT (Ctrl-C) and SIGTERM (a preempted machine, `kill`): a training command stops at the end
of the current step with a checkpoint of that step, then exits 130 or 143; run again, it resumes
there. Outside training they stop the command at once (nothing is lost: every file is written
atomically). A second signal while a step finishes stops at once too.
"""

import contextlib
import signal
import threading

from mobilenets.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"training": False, "requested": None}


@contextlib.contextmanager
def handled():
    """Handles SIGINT and SIGTERM as above inside the block (Python takes signals in the main
    thread only: elsewhere the block runs with the handlers it had)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in SIGNALS}
    for number in SIGNALS:
        signal.signal(number, _handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _state.update(training=False, requested=None)


@contextlib.contextmanager
def training():
    """Inside the block, a signal only asks training to stop (`requested`)."""
    _state["training"] = True
    try:
        yield
    finally:
        _state["training"] = False


def requested():
    """The signal number that asked training to stop, or None."""
    return _state["requested"]


def _handle(number, frame):
    if _state["training"] and _state["requested"] is None:
        _state["requested"] = number
        return
    raise Interrupted(f"stopped by {signal.Signals(number).name}", number)
