"""The messages that cross a process boundary while grading, each with one declared format.

- :class:`Job`: what the coordinating process (:mod:`.runner`) asks a worker (:mod:`.worker`) to
  grade: one student's submission, and everything the worker needs to grade it alone;
- :class:`Result`: what the worker answers.

Both are written as JSON (``job.json``, ``result.json`` in the student's work folder) and read back
with :meth:`from_json`, which refuses a message with a missing, unknown or mistyped field instead
of guessing. (The values that cross between the student's kernel and the checker have their own
format: :mod:`.wire`.)
"""
from __future__ import annotations

import json
import typing
from dataclasses import asdict, dataclass, field, fields

MAX_RERUNS = 4          # times a submission is graded again after a cell is graded as unanswered


class MessageError(ValueError):
    pass


def _check(value, hint, where: str) -> None:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is typing.Any:
        return
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        for option in args:
            try:
                _check(value, option, where)
                return
            except MessageError:
                continue
        raise MessageError(f"{where}: expected {hint}, got {type(value).__name__}")
    if hint is type(None):
        if value is not None:
            raise MessageError(f"{where}: expected None, got {type(value).__name__}")
        return
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise MessageError(f"{where}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, args[0] if args else typing.Any, f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise MessageError(f"{where}: expected an object, got {type(value).__name__}")
        for k, v in value.items():
            _check(k, args[0] if args else typing.Any, f"{where} key")
            _check(v, args[1] if args else typing.Any, f"{where}[{k!r}]")
        return
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise MessageError(f"{where}: expected a number, got {type(value).__name__}")
        return
    if hint is int and isinstance(value, bool):
        raise MessageError(f"{where}: expected an integer, got a bool")
    if not isinstance(value, hint):
        raise MessageError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")


class _Message:
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise MessageError(f"{cls.__name__}: expected an object")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise MessageError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        required = {f.name for f in fields(cls) if f.default is f.default_factory is __import__("dataclasses").MISSING}
        missing = required - set(data)
        if missing:
            raise MessageError(f"{cls.__name__}: missing fields {sorted(missing)}")
        for key, value in data.items():
            _check(value, hints[key], f"{cls.__name__}.{key}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MessageError(f"{cls.__name__}: not JSON ({exc})") from None
        return cls.from_dict(data)


@dataclass
class Job(_Message):
    """One submission to grade (paths are on the worker's machine)."""
    student: str
    assignment: str
    notebooks: dict[str, str]                # notebook name -> the rebuilt notebook to grade
    timestamp: str | None                    # the submission time, from where it was collected
    key: str                                 # identifies the inputs: same key, same result
    work: str                                # the student's work folder (job.json, result.json, logs)
    scratch: str                             # the sandbox's scratch folder (emptied before each run)
    uid: int | None                          # the sandbox's user id (root only)
    template_db: str                         # a gradebook with only this assignment
    course_config: str | None                # the course's nbgrader_config.py
    source_dir: str                          # the assignment's source folder (its data files)
    limits: dict[str, int]                   # sandbox.Limits as a dict
    sandbox: bool                            # False only with --no-sandbox
    forbidden: list[str]                     # folders the sandbox must not see
    threads: int                             # threads for NumPy/TensorFlow in each kernel
    trusted: dict[str, str]                  # code hash -> "given" or "test" (the locked code cells)
    preload: list[str]                       # modules the locked setup cells import
    stubs: dict[str, dict[str, str]]         # notebook -> grade id -> the released answer cell
    interface: list[str]                     # names the answer cells define (what tests may look up)
    package: str | None                      # dlcourse without the off-limits reference answers
    max_reruns: int = MAX_RERUNS
    files: str | None = None                 # a folder of the other files handed in beside the notebooks
    preprocessors: list[str] = field(default_factory=list)   # autograde's, Execute replaced (runner.autograde_preprocessors)


@dataclass
class Result(_Message):
    """What grading one submission gave."""
    student: str
    status: str                              # ok, problem, error
    problems: list[str]
    scores: dict[str, typing.Any]            # notebook -> {"grades": {...}, "comments": {...}}
    autograded: dict[str, str]               # notebook -> the autograded copy
    runs: int = 0
    seconds: float = 0.0
    timestamp: str | None = None
    key: str = ""
    off_limits: list[str] = field(default_factory=list)   # reference answers the code tried to use
    checker_seconds: float = 0.0             # CPU time of the checker process(es)
