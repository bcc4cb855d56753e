"""Where fsm's time goes on W1-W3: ``python tools/bench/suite.py --profile [--workloads W1,W3]``.

With py-spy installed (``pip install py-spy``), each workload runs in a child process sampled
at 1 kHz (low overhead, so the shares are those of a normal run); the summary gives each
function's share of the samples inside the send loop, self and inclusive, and the hottest
lines. Without py-spy, cProfile runs in-process (its per-call overhead inflates small
functions; read its shares as an upper bound on call-heavy code).
"""

from __future__ import annotations

import cProfile
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from peers import workloads as w
from peers.timing import Trial

BENCH = Path(__file__).resolve().parent.parent
EVENTS = {"W1": 1_000_000, "W2": 400_000, "W3": 300_000}  # about a second of samples each
LOOP = "_sender.<locals>.run"


def _trial(workload: str, n: int) -> Trial:
    from peers import fsm_engine

    bench = fsm_engine.SYSTEM.benches[workload]
    bench(w.events_for(workload, 3_000)).run()  # warm the plan cache
    return bench(w.events_for(workload, n))


def summarise_raw(path: Path, top: int = 12) -> str:
    """py-spy's raw output (``frame;frame;... count`` per line) as shares of the loop."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count, raw = int(count_text), stack.split(";")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in raw]
        loop = next((i for i, frame in enumerate(frames) if frame.startswith(LOOP)), None)
        if loop is None:
            continue
        frames = frames[loop:]  # what runs the loop is 100% by definition: left out
        total += count
        own[frames[-1]] += count
        lines[raw[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples inside the send loop"

    def block(title: str, counter: Counter[str]) -> list[str]:
        return [title, *(f"  {100 * c / total:5.1f}%  {name}" for name, c in counter.most_common(top))]

    return "\n".join(
        [
            f"{total} samples in the send loop",
            *block("self:", own),
            *block("inclusive:", inclusive),
            *block("hottest lines:", lines),
        ]
    )


def profile(workloads: list[str]) -> str:
    out = []
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    for workload in (k for k in workloads if k in EVENTS):
        events = EVENTS[workload]
        out.append(f"== fsm {workload}, {events:,} events, {'py-spy 1 kHz' if spy else 'cProfile'}")
        if spy:
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "samples.txt"
                code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); from peers.hotspots import child; child()"
                target = [sys.executable, "-c", code, workload, str(events)]
                subprocess.run(
                    [spy, "record", "-r", "1000", "-f", "raw", "-o", str(raw), "--", *target],
                    check=True,
                    capture_output=True,
                )
                out.append(summarise_raw(raw))
        else:
            trial = _trial(workload, events)
            profiler = cProfile.Profile()
            profiler.runcall(trial.run)
            trial.check()
            stream = _Capture()
            pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(15)  # type: ignore[arg-type]
            out.append(stream.text())
    return "\n".join(out)


class _Capture:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts).strip()


def child() -> None:
    """The process py-spy samples: ``python -c ... W1 300000``."""
    trial = _trial(sys.argv[1], int(sys.argv[2]))
    trial.run()
    trial.check()
