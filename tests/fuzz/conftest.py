"""Hostile-input fuzz suite: generated inputs through the same entry points the CLI and UI use.

Every test here is a hypothesis property decorated with ``@FUZZ`` (from ``tests.fuzz.profile``).
``make test`` runs 500 examples per property (a few minutes in all, within the suite's budget);
``make fuzz`` sets ``PHOENIX_FUZZ_EXAMPLES`` for a long run. Each property asserts that an
input is either accepted or refused with Phoenix's own clear error: never a traceback,
never a partial write, bounded time.
"""
