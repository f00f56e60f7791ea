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


def _all_dependencies() -> list[str]:
    """The core dependencies and every extra's."""
    extras = PYPROJECT["project"].get("optional-dependencies", {})
    return PYPROJECT["project"]["dependencies"] + [d for deps in extras.values() for d in deps]


EXTRAS = set(PYPROJECT["project"].get("optional-dependencies", {}))
# What a student's `pip install dlcourse` must not bring: the tools of developers and instructors.
NOT_FOR_STUDENTS = {"jupyter-book", "sphinx", "pytest", "nbval", "selenium", "celery", "redis",
                    "psycopg2-binary", "jupyterhub"}
FOR_STUDENTS = {"numpy", "scipy", "matplotlib", "scikit-learn", "tensorflow-cpu", "keras", "mnist1d",
                "jupyterlab", "nbgrader"}


def test_environment_yml_pip_dependencies_match_pyproject():
    in_env = {str(Requirement(d)) for d in _pip_list()}
    in_pyproject = {str(Requirement(d)) for d in _all_dependencies()}
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
    for dep in _all_dependencies():
        req = Requirement(dep)
        key = req.name.lower().replace("_", "-")
        assert key in pins, f"{req.name} is not pinned in constraints.txt: run `make lock`"
        assert pins[key] in req.specifier, f"constraints.txt pins {req.name}=={pins[key]} outside {req.specifier}"


def test_jupyter_book_is_pinned_below_2():
    # Jupyter Book 2.x ignores _config.yml and _toc.yml.
    (jb,) = [Requirement(d) for d in _all_dependencies() if d.startswith("jupyter-book")]
    assert "2.0.0" not in jb.specifier and "1.0.4.post1" in jb.specifier


def test_a_students_install_brings_the_chapters_and_exercises_not_the_tools():
    core = {Requirement(d).name.lower() for d in PYPROJECT["project"]["dependencies"]}
    assert FOR_STUDENTS <= core, f"missing from the core dependencies: {sorted(FOR_STUDENTS - core)}"
    assert not core & NOT_FOR_STUDENTS, f"tools in a student's install: {sorted(core & NOT_FOR_STUDENTS)}"
    assert {"book", "test", "grade", "hub"} <= EXTRAS, sorted(EXTRAS)


def test_make_installs_every_extra_and_make_lock_pins_them():
    makefile = (ROOT / "Makefile").read_text()
    (extras,) = re.findall(r"^EXTRAS\s*:=\s*(\S+)$", makefile, re.M)
    assert set(extras.split(",")) == EXTRAS, f"the Makefile installs .[{extras}], pyproject.toml has {sorted(EXTRAS)}"
    # the install step of every target and `make lock`
    assert makefile.count("-e .[$(EXTRAS)]") == 2, "the install step and `make lock` must install .[$(EXTRAS)]"
