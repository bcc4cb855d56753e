"""Compilers: workflows written in other vocabularies, turned into ordinary machine
definitions (plain dicts that pass fsm's machine schema). They import nothing from the
runtime; running the results is the job of :mod:`fsm.compile.dag_runner` and
:mod:`fsm.compile.saga_runner`."""

from fsm.compile.dag import Dag, compile_dag, is_dag_document, load_dag, parse_dag
from fsm.compile.saga import (
    ABANDON,
    RESUME_COMPENSATION,
    RESUME_FORWARD,
    Group,
    OutcomeUnknown,
    RetryPolicy,
    Saga,
    Step,
    compile_saga,
    is_saga_document,
    load_saga,
    parse_saga,
    saga_context,
    saga_status,
)

__all__ = [
    "ABANDON",
    "RESUME_COMPENSATION",
    "RESUME_FORWARD",
    "Dag",
    "Group",
    "OutcomeUnknown",
    "RetryPolicy",
    "Saga",
    "Step",
    "compile_dag",
    "compile_saga",
    "is_dag_document",
    "is_saga_document",
    "load_dag",
    "load_saga",
    "parse_dag",
    "parse_saga",
    "saga_context",
    "saga_status",
]
