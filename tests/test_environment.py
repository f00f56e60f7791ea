"""The project's environment descriptions agree with each other."""
import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from nbtools import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_list():
    for dep in ENV["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return dep["pip"]
    raise AssertionError("environment.yml has no pip: section")


def test_environment_yml_pip_dependencies_match_pyproject():
    in_env = {str(Requirement(d)) for d in _pip_list()}
    in_pyproject = {str(Requirement(d)) for d in PYPROJECT["project"]["dependencies"]}
    assert in_env == in_pyproject, (f"only in environment.yml: {sorted(in_env - in_pyproject)}; "
                                    f"only in pyproject.toml: {sorted(in_pyproject - in_env)}")


def test_environment_yml_python_satisfies_requires_python():
    pythons = [d for d in ENV["dependencies"] if isinstance(d, str) and re.match(r"python\b", d)]
    assert len(pythons) == 1, "environment.yml must pin one python version"
    version = pythons[0].split("=", 1)[1].strip("=")
    assert version in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_constraints_pin_every_dependency_within_its_range():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version.strip()
    for dep in PYPROJECT["project"]["dependencies"]:
        req = Requirement(dep)
        key = req.name.lower().replace("_", "-")
        assert key in pins, f"{req.name} is not pinned in constraints.txt: run `make lock`"
        assert pins[key] in req.specifier, f"constraints.txt pins {req.name}=={pins[key]} outside {req.specifier}"


def test_jupyter_book_is_pinned_below_2():
    # Jupyter Book 2.x ignores _config.yml and _toc.yml.
    (jb,) = [Requirement(d) for d in PYPROJECT["project"]["dependencies"] if d.startswith("jupyter-book")]
    assert "2.0.0" not in jb.specifier and "1.0.4.post1" in jb.specifier
