"""Run machines through real XState v5 (in Node) to get reference traces.

The oracle is ``tools/xstate/oracle.mjs``; this module starts it once and talks JSON Lines
to it, so thousands of cases go through one long-lived Node process::

    with XStateOracle() as oracle:
        trace = oracle.run_one(machine, [{"event": {"type": "GO"}}, {"advance": 100}])

A case is ``{"machine": ..., "steps": [...], "maxIterations": N?, "context": {...}?}`` and a
result is ``{"id": ..., "trace": [...]}`` or ``{"id": ..., "fatal": "message"}``; the trace
format is defined in ``docs/conformance.md``.

Always give machines that may loop a ``maxIterations``: XState's default bound is infinite,
and the oracle would spin until the read timeout kills it.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "ORACLE_DIR",
    "ORACLE_SCRIPT",
    "OracleCaseError",
    "OracleUnavailable",
    "XStateOracle",
    "node_available",
]

ORACLE_DIR = Path(__file__).resolve().parents[2] / "tools" / "xstate"
ORACLE_SCRIPT = ORACLE_DIR / "oracle.mjs"

_STDERR_LINES_KEPT = 200


class OracleUnavailable(RuntimeError):
    """Node or the oracle's npm dependencies are missing, so XState cannot be run."""


class OracleCaseError(RuntimeError):
    """XState could not run a case at all (``createMachine`` threw, or the case is malformed)."""

    def __init__(self, message: str, case: dict[str, Any] | None = None) -> None:
        self.case = case
        super().__init__(message)


def node_available() -> str | None:
    """``None`` if the oracle can run here, otherwise a human-readable reason why not."""
    if shutil.which("node") is None:
        return "node is not on PATH (install Node.js 18+ to run the XState oracle)"
    if not ORACLE_SCRIPT.is_file():
        return f"the oracle script {ORACLE_SCRIPT} is missing"
    if not (ORACLE_DIR / "node_modules" / "xstate" / "package.json").is_file():
        return f"XState is not installed for the oracle: run `npm ci` in {ORACLE_DIR}"
    return None


class XStateOracle:
    """A long-lived ``node tools/xstate/oracle.mjs`` process.

    The process starts on first use (or on ``__enter__``) and is restarted automatically if it
    died or was killed after a timeout. ``timeout`` bounds the wait for each single result, in
    seconds (``None`` waits forever).
    """

    def __init__(self, *, timeout: float | None = 60.0, node: str | None = None) -> None:
        self.timeout = timeout
        self._node = node
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES_KEPT)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._next_id = 0

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> XStateOracle:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the Node process if it is not running. Raises :class:`OracleUnavailable`."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self._reap()
        node = self._node
        if node is None:
            reason = node_available()
            if reason is not None:
                raise OracleUnavailable(reason)
            node = shutil.which("node")
            assert node is not None
        try:
            proc = subprocess.Popen(
                [node, str(ORACLE_SCRIPT)],
                cwd=str(ORACLE_DIR),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        except OSError as err:
            raise OracleUnavailable(f"cannot start {node}: {err}") from err
        assert proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self._lines = queue.Queue()
        self._stderr = deque(maxlen=_STDERR_LINES_KEPT)
        self._threads = [
            threading.Thread(
                target=_pump,
                args=(proc.stdout, self._lines.put),
                name="xstate-oracle-stdout",
                daemon=True,
            ),
            threading.Thread(
                target=_pump,
                args=(proc.stderr, self._stderr.append, False),
                name="xstate-oracle-stderr",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop the Node process (it exits when its stdin closes). Safe to call twice."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._reap()

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def stderr_tail(self) -> str:
        """The last lines the oracle wrote to stderr (XState warnings, crashes)."""
        return "".join(self._stderr)

    # -- running cases ---------------------------------------------------------------------

    def run(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run every case; return one result per case, in order.

        Each result is ``{"id": <the case's id or None>, "trace": [...]}`` or
        ``{"id": ..., "fatal": "message"}`` (plus ``"errorMessage"`` when the run ended in
        status ``error``). Raises :class:`RuntimeError` if the Node process dies or stops
        answering; the next call starts a fresh process.
        """
        with self._lock:
            if not cases:
                return []
            self.start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            first_id = self._next_id
            self._next_id += len(cases)
            # Our own sequence numbers go over the wire so answers are matched for certain.
            lines = [_encode_case(case, first_id + i) for i, case in enumerate(cases)]

            # Write from a thread while reading here: both pipes are bounded, and writing
            # everything before reading could deadlock with a large batch.
            write_error: list[BaseException] = []
            writer = threading.Thread(
                target=_write_all,
                args=(proc.stdin, lines, write_error),
                name="xstate-oracle-stdin",
                daemon=True,
            )
            writer.start()
            results: list[dict[str, Any]] = []
            try:
                for i, case in enumerate(cases):
                    result = self._read_result()
                    if result.get("id") != first_id + i:
                        raise RuntimeError(
                            f"XState oracle answered out of order: expected id {first_id + i}, "
                            f"got {result.get('id')!r}: {json.dumps(result)[:500]}"
                        )
                    result["id"] = case.get("id")
                    results.append(result)
            except BaseException:
                self._reap()
                writer.join(timeout=5)
                raise
            writer.join()
            if write_error:
                self._reap()
                raise RuntimeError(f"cannot write to the XState oracle: {write_error[0]}{self._stderr_note()}")
            return results

    def run_one(self, machine: dict[str, Any], steps: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
        """Run one machine and return its trace.

        Keyword arguments go into the case (``maxIterations=50``, ``context={...}``;
        ``max_iterations`` is accepted as a spelling of ``maxIterations``). Raises
        :class:`OracleCaseError` when XState cannot create the machine.
        """
        case: dict[str, Any] = {"machine": machine, "steps": steps}
        if "max_iterations" in kw:
            kw["maxIterations"] = kw.pop("max_iterations")
        case.update(kw)
        (result,) = self.run([case])
        if "fatal" in result:
            raise OracleCaseError(f"XState cannot run the case: {result['fatal']}", case)
        trace: list[dict[str, Any]] = result["trace"]
        return trace

    def _read_result(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            raise RuntimeError(
                f"XState oracle gave no answer within {self.timeout}s (a machine that loops "
                f"forever without maxIterations?); killed it{self._stderr_note()}"
            ) from None
        if line is None:
            code: int | None = None
            if self._proc is not None:
                code = self._proc.wait(timeout=5)
                for thread in self._threads:
                    thread.join(timeout=2)  # let the stderr pump collect the crash report
            raise RuntimeError(f"XState oracle exited unexpectedly (exit code {code}){self._stderr_note()}")
        try:
            result = json.loads(line)
        except json.JSONDecodeError as err:
            raise RuntimeError(f"XState oracle wrote a line that is not JSON ({err}): {line[:500]!r}") from err
        if not isinstance(result, dict):
            raise RuntimeError(f"XState oracle wrote an unexpected line: {line[:500]!r}")
        return result

    def _stderr_note(self) -> str:
        tail = self.stderr_tail().strip()
        return f"\n--- oracle stderr ---\n{tail}" if tail else ""


def _encode_case(case: dict[str, Any], wire_id: int) -> str:
    if not isinstance(case, dict):
        raise TypeError(f"a case must be a dict, not {type(case).__name__}")
    return json.dumps({**case, "id": wire_id}, allow_nan=False, separators=(",", ":")) + "\n"


def _pump(stream: IO[str], put: Callable[[Any], object], end_with_none: bool = True) -> None:
    """Copy lines from ``stream`` to ``put`` until EOF, then put ``None`` if asked to."""
    try:
        for line in stream:
            put(line)
    except (OSError, ValueError):
        pass
    finally:
        if end_with_none:
            put(None)


def _write_all(stream: IO[str], lines: list[str], errors: list[BaseException]) -> None:
    try:
        for line in lines:
            stream.write(line)
            stream.flush()
    except (OSError, ValueError) as err:
        errors.append(err)
