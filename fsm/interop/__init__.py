"""Bridges between fsm and other Python state machine libraries.

Each bridge converts *definitions* (it never wraps another library's runtime), so a
converted machine is an ordinary fsm definition: it validates, persists, draws and runs
like any other. Bridges import their library lazily; install it with the ``interop``
extra (``pip install 'fsm[interop]'``).

- :mod:`fsm.interop.transitions`: pytransitions ``Machine`` / ``HierarchicalMachine``
  to and from fsm (docs/interop.md).
"""
