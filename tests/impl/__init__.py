"""Python implementations for the example machines in ``machines/``.

Each module exposes ``actions``, ``guards``, ``services`` and ``delays`` dicts, the shape
``fsm run FILE --impl MODULE`` expects, e.g. from the repository root::

    fsm run machines/xstate_workflow.json --impl tests.impl.xstate_workflow \\
        -e 'START:{"job": {"items": [1, 2, 3]}}'

The tests import the same modules (and their factories) so that what the command line
runs is what the tests check.
"""
