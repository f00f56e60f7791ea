# The instructor's course folder (hub/setup.py makes it: nbgrader_config.py, solutions/, exercises/,
# the gradebook). The formgrader, the course list and `nbgrader` commands run in a terminal all use it.
import os

c = get_config()  # noqa: F821
c.CourseDirectory.root = os.path.expanduser("~/dlcourse")
