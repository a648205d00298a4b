"""Ctrl-C during meta-training: checkpoint at the end of the step, then stop."""

import signal


class InterruptFlag:
    """SIGINT (Ctrl-C) sets a flag checked at step boundaries, like SIGTERM; a second one
    raises KeyboardInterrupt at once. The previous handler is restored on exit."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _on_sigint(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: checkpointing at the end of this step (again to stop at once).",
              flush=True)

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # Not in the main thread: Ctrl-C is not ours to handle.
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
