"""Imported by multiprocessing's forkserver before it forks any grading worker (see
``runner._context``): it imports nbgrader, the grading modules and what the checker needs
(TensorFlow, via Keras) once, so that no worker or checker pays for those imports again.

NumPy's BLAS and TensorFlow read their thread counts when they are first loaded, here: one thread
each. Workers and checkers forked from this process do light numerical work (the tests' checks), and
idle BLAS threads that spin after every operation cost more CPU than they save (measured: the
checker used about twice the CPU time with the machine's default). The student's kernel is a new
process and gets its own share of threads (``sandbox.sandbox_env``).
"""
import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS"):
    os.environ[_name] = "1"

from .worker import preload as _preload  # noqa: E402

_preload()
