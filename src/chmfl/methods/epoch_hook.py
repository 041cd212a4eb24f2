"""Who wants to hear that a training epoch finished (the run's ETA, ``cv.eta``), without the
training loop knowing who listens: the loop calls ``epoch_finished``; ``listening(fn)`` makes
``fn`` hear every call in this process while the ``with`` block runs. Worker processes
(``--parallel-folds``) have no listeners: their folds are timed as wholes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Listener = Callable[[int, int, float], None]  # (epochs done, maximum epochs, seconds of this one)
_LISTENERS: list[Listener] = []


def epoch_finished(epoch: int, max_epochs: int, seconds: float) -> None:
    """Tell every listener that epoch ``epoch`` of at most ``max_epochs`` took ``seconds``."""
    for listener in tuple(_LISTENERS):
        listener(epoch, max_epochs, seconds)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)
