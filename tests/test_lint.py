"""The same checks everywhere: this test fails the suite when ruff, mypy or import-linter would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (ruff from this interpreter's environment)
        [sys.executable, "-m", "ruff", *args, str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_ruff_check_passes() -> None:
    result = _ruff("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes() -> None:
    result = _ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def _tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (tools from this interpreter's environment)
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )


def test_mypy_passes() -> None:
    result = _tool("mypy")  # files and settings: [tool.mypy] in pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layers_point_one_way() -> None:
    """import-linter's contracts ([tool.importlinter] in pyproject.toml): the domain imports no
    Slack and no boto3, storage nothing of the bot, only bot.aws boto3, no cycle anywhere."""
    lint_imports = Path(sys.executable).with_name("lint-imports")  # import-linter's own command
    result = subprocess.run(  # noqa: S603 (installed with the test extras)
        [str(lint_imports), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    assert "Contracts: " in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
