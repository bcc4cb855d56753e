"""Every example in README.md and docs/ is executed, so documentation cannot rot.

- ``>>>`` examples are run as doctests (the whole file is one doctest session);
- other ```python blocks are executed as scripts, in order, sharing one namespace per file;
- ```json / ```yaml blocks that define a machine (a mapping with ``states``) must load.
"""

from __future__ import annotations

import doctest
import json
import os
import re
from pathlib import Path

import pytest

from fsm import Machine
from fsm.loading import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def _blocks(path: Path, language: str) -> list[str]:
    return [m.group(2) for m in BLOCK.finditer(path.read_text(encoding="utf-8")) if m.group(1) == language]


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_doctests(path: Path) -> None:
    result = doctest.testfile(
        str(path),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        raise_on_error=False,
        verbose=False,
    )
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {path.name} (see output above)"


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_python_blocks_run(path: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in _blocks(path, "python"):
        if ">>>" in block:
            continue  # run by test_doctests
        exec(compile(block, f"{path.name}:python-block", "exec"), namespace)


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_machine_blocks_load(path: Path) -> None:
    for language in ("json", "yaml"):
        for block in _blocks(path, language):
            data = json.loads(block) if language == "json" else parse_yaml(block)
            if isinstance(data, dict) and "states" in data:
                Machine.from_dict(data)


def test_every_doc_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in DOCS[1:]:
        assert f"docs/{path.name}" in readme, f"README.md does not link docs/{path.name}"


def test_links_between_docs_resolve() -> None:
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#]+\.md)\)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).is_file(), f"{path.name} links to missing {target}"


def test_readme_starts_with_setup_and_test_commands() -> None:
    blocks = _blocks(ROOT / "README.md", "sh")
    assert "fsm run machines/" in blocks[0]
    test_command = blocks[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci, "the README test command must be what CI runs"
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
