"""Imported by multiprocessing's forkserver before it forks any grading worker (see
``runner._context``): it imports nbgrader, the grading modules and what the checker needs
(TensorFlow, via Keras) once, so that no worker or checker pays for those imports again."""
from .worker import preload as _preload

_preload()
