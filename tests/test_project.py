"""The project's shape: README's commands are what CI runs, the code is lint-clean, the CLI loads."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys

import pytest
from conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_install_and_test_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[2] == "```bash"
    install, tests = _readme_commands()[:2]
    assert "pip install" in install and "repsr upscale" in install
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == _readme_commands()[1]


def test_every_cli_command_loads_and_has_help():
    from repsr.cli import COMMANDS, build_parser

    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([name, "--help"])
        assert info.value.code == 0


def test_code_is_ruff_clean():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff not installed (it is part of the [test] extra)")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_code_passes_the_type_checker():
    """``mypy --strict`` on src/repsr, as configured in pyproject.toml (incremental: .mypy_cache/)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy not installed (it is part of the [test] extra)")
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def _read_layers() -> dict[int, tuple[str, ...]]:
    """docs/architecture.md's table: layer number -> module names (a file or a package under repsr/)."""
    layers = {}
    for line in (REPO / "docs" / "architecture.md").read_text().splitlines():
        match = re.match(r"\|\s*(\d+)[^|]*\|([^|]*)\|", line)
        if match:
            names = re.findall(r"`([^`]+)`", match.group(2))
            layers[int(match.group(1))] = tuple(n.rstrip("/").removesuffix(".py") for n in names)
    return layers


LAYERS = _read_layers()


def _layer(parts: list[str]) -> int:
    name = parts[0].removesuffix(".py") if parts else "__init__"
    found = [layer for layer, names in LAYERS.items() if name in names]
    assert len(found) == 1, f"repsr/{name} must appear in exactly one layer of docs/architecture.md"
    return found[0]


def test_no_module_imports_a_higher_layer():
    root = REPO / "src" / "repsr"
    upward = []
    for path in sorted(root.rglob("*.py")):
        own = _layer(list(path.relative_to(root).parts))
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "repsr" and len(parts) > 1 and _layer(parts[1:]) > own:
                    upward.append(f"{path.relative_to(root)} -> {name}")
    assert not upward, upward
