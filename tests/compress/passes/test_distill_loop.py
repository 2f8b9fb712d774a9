"""The distillation loop's deferred interrupt: a signal waits for the step boundary, then acts as it would have."""

import os
import signal

import pytest

from compress.passes.distill_loop import DeferredInterrupt


class Stopped(KeyboardInterrupt):
    pass


def test_sigterm_waits_for_the_step_boundary_then_calls_the_handler_that_was_there():
    def outer(signum, frame):  # what the CLI installs: SIGTERM as its own KeyboardInterrupt
        raise Stopped()

    before = signal.signal(signal.SIGTERM, outer)
    said = []
    try:
        with DeferredInterrupt(said.append) as interrupt:
            os.kill(os.getpid(), signal.SIGTERM)  # mid-step: nothing is raised yet
            assert interrupt.requested and said and "stopping after this step" in said[0]
            with pytest.raises(Stopped):
                interrupt.fire()  # at the boundary, after the checkpoint
        assert signal.getsignal(signal.SIGTERM) is outer  # restored on the way out
    finally:
        signal.signal(signal.SIGTERM, before)


def test_ctrl_c_at_the_boundary_is_a_keyboard_interrupt():
    with DeferredInterrupt(lambda _: None) as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt) as raised:
            interrupt.fire()
        assert type(raised.value) is KeyboardInterrupt
