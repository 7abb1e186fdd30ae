"""The project's own consistency: export in sync, ruff clean, environments agree, CI = README."""

import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)


def test_package_matches_chapters():
    result = run("tools/export.py", "--check")
    assert result.returncode == 0, result.stderr


def test_ruff_clean():
    result = run("-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def normalise(requirement: str) -> str:
    name = re.split(r"[\s<>=!~\[;]", requirement.strip(), maxsplit=1)[0]
    return {"pytorch": "torch"}.get(name.lower().replace("_", "-"), name.lower().replace("_", "-"))


def test_environment_yml_lists_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    wanted = {normalise(r) for r in requirements if "python_version" not in r}
    listed, in_dependencies = set(), False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\S", line):
            in_dependencies = line.startswith("dependencies:")
        elif in_dependencies and (m := re.match(r"^\s+-\s+([^\s#:]+)\s*(#.*)?$", line)):
            listed.add(normalise(m.group(1)))
    assert "python" in listed
    listed -= {"python", "pip", "-e"}
    assert wanted == listed, (
        f"only in pyproject: {sorted(wanted - listed)}; only in environment.yml: {sorted(listed - wanted)}"
    )


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```\w*\n(.+?)\n\s*```", readme, re.S)
    assert match, "README.md marks its test command with <!-- test-command -->"
    command = match.group(1).strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines, (
        f".ci/run must run the README's test command `{command}` as a line of its own"
    )
