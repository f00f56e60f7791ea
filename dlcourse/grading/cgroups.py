"""A share of the CPU and a memory bound for each sandbox, with the kernel's control groups.

Without them, sandboxes graded side by side share the machine's cores freely: a submission that
burns every core slows its neighbour, whose honest cell may then pass its wall-time limit. With a
control group of its own, each sandbox may use at most its share of the cores (``cpus``: the
grader gives each of its ``--jobs`` sandboxes the machine's cores divided by the jobs) and its
memory bound; a neighbour's load can then no longer take an honest submission's share.

Control groups are used where the machine offers them to the grader: running as root, with the
unified hierarchy (cgroup v2, ``/sys/fs/cgroup/cgroup.controllers`` listing ``cpu`` and
``memory``) or the v1 ``cpu`` and ``memory`` hierarchies. Elsewhere :func:`unavailable` says why and
the grader goes on without them: sandboxes then share the CPU, and ``--cell-timeout`` should keep a
margin for a busy machine (the instructors' page says so).

The kernel joins its group as it starts: the command is wrapped in ``sh -c 'echo $$ > .../cgroup.procs;
exec "$@"'``, so bubblewrap and everything it starts are in the group from their first instruction.
"""
from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD = 100_000          # microseconds


def _v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def unavailable() -> str | None:
    """None if sandboxes can get control groups here, else the reason (in words)."""
    if os.getuid() != 0:
        return "the grader does not run as root"
    if _v2():
        controllers = (ROOT / "cgroup.controllers").read_text().split()
        missing = [c for c in ("cpu", "memory") if c not in controllers]
        return f"the cgroup v2 hierarchy has no {', '.join(missing)} controller" if missing else None
    for name in ("cpu", "memory"):
        if not (ROOT / name).is_dir() or not os.access(ROOT / name, os.W_OK):
            return f"no writable cgroup v1 {name} hierarchy"
    return None


class Group:
    """One sandbox's control group: ``create()``, ``wrap(cmd)``, ``remove()``."""

    def __init__(self, name: str, cpus: float, memory: int):
        self.name, self.cpus, self.memory = name, cpus, memory
        self.paths: list[Path] = []

    def create(self) -> None:
        quota = max(1000, int(self.cpus * PERIOD))
        if _v2():
            parent = ROOT / "dlcourse"
            parent.mkdir(exist_ok=True)
            try:
                (ROOT / "cgroup.subtree_control").write_text("+cpu +memory")
                (parent / "cgroup.subtree_control").write_text("+cpu +memory")
            except OSError:
                pass
            group = parent / self.name
            group.mkdir(exist_ok=True)
            (group / "cpu.max").write_text(f"{quota} {PERIOD}")
            (group / "memory.max").write_text(str(self.memory))
            self.paths = [group]
        else:
            cpu = ROOT / "cpu" / f"dlcourse-{self.name}"
            mem = ROOT / "memory" / f"dlcourse-{self.name}"
            cpu.mkdir(exist_ok=True)
            mem.mkdir(exist_ok=True)
            (cpu / "cpu.cfs_period_us").write_text(str(PERIOD))
            (cpu / "cpu.cfs_quota_us").write_text(str(quota))
            (mem / "memory.limit_in_bytes").write_text(str(self.memory))
            self.paths = [cpu, mem]

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd``, started inside this group."""
        joins = "; ".join(f"echo $$ > {shlex.quote(str(p / 'cgroup.procs'))}" for p in self.paths)
        return ["/bin/sh", "-c", f'{joins}; exec "$@"', "sh", *cmd]

    def cpu_seconds(self) -> float | None:
        for path in self.paths:
            try:
                if (path / "cpu.stat").exists() and _v2():
                    stats = dict(line.split() for line in (path / "cpu.stat").read_text().splitlines())
                    return int(stats["usage_usec"]) / 1e6
            except (OSError, KeyError, ValueError):
                return None
        return None

    def remove(self) -> None:
        """Remove the group once its processes have gone (they are killed before)."""
        for path in reversed(self.paths):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        self.paths = []
