"""Grading a whole class with nbgrader: in parallel, sandboxed, fair to everyone.

``dlcourse grade ASSIGNMENT --submissions DIR --out DIR`` (see :mod:`dlcourse.__main__`) runs
:func:`dlcourse.grading.runner.grade`. The modules:

- :mod:`~dlcourse.grading.intake`: find each student's notebook, rebuild it from the release;
- :mod:`~dlcourse.grading.sandbox`: bubblewrap and the resource limits;
- :mod:`~dlcourse.grading.kernel`: the kernel inside the sandbox, with the guard;
- :mod:`~dlcourse.grading.execute`: nbgrader's Execute step, sandboxed and watched;
- :mod:`~dlcourse.grading.worker`: one submission, in its own throwaway gradebook;
- :mod:`~dlcourse.grading.gradebook`: merging into the course's gradebook, exporting;
- :mod:`~dlcourse.grading.feedback`: feedback pages without the hidden tests;
- :mod:`~dlcourse.grading.report`: grades.csv, the summary table, the figure.
"""
