"""Start a child process as a terminal would, for the tests that send it Ctrl-C."""

import signal


def as_in_a_terminal():
    """``preexec_fn``: SIGINT at its default, unblocked. A child inherits its parent's state of
    SIGINT, and pytest-xdist's workers ignore it: Python then installs no KeyboardInterrupt
    handler in the child, and a test's Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
