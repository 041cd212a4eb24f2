"""Speed-option tests run on one intra-op thread (tests/threads.py)."""

from tests.threads import one_thread  # noqa: F401  (an autouse fixture)
