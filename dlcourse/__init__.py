"""Deep Learning Models: the course's reference implementations.

Chapters and exercises import from here instead of repeating code. One small module per
topic; each function's docstring names the chapter that teaches it.

Importing ``dlcourse`` before TensorFlow keeps TensorFlow's C++ log lines off stderr: a
graded test cell that writes to stderr scores zero in nbgrader, and the book hides stderr.
``TF_ENABLE_ONEDNN_OPTS=0`` also makes CPU results repeatable from run to run.
"""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
