# nbgrader configuration for the course (instructors run nbgrader from this folder).
import os

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "dlcourse"
# Instructor notebooks (with solutions and hidden tests) are nbgrader's "source";
# the generated student notebooks are its "release".
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Only notebooks are part of an assignment: no data files are needed (everything is generated).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# nbgrader's exchange, through which assignments are fetched and submitted: `make lab` uses a local
# one in the course folder (.exchange/), `make hub` the hub's (hub/roles/common/nbgrader_config.py).
if os.environ.get("DLCOURSE_EXCHANGE"):
    c.Exchange.root = os.environ["DLCOURSE_EXCHANGE"]
# Where the Assignments panel fetches to and submits from: the folder JupyterLab serves (`make lab`
# sets it; on the hub each user's server runs in that folder, the default).
if os.environ.get("DLCOURSE_ASSIGNMENT_DIR"):
    c.Exchange.assignment_dir = os.environ["DLCOURSE_ASSIGNMENT_DIR"]

# Kernels inherit these from `make`, and `import dlcourse` sets them too; a student who starts
# Jupyter another way still gets a quiet TensorFlow.
# Training cells take up to ~30 s on 2 CPU cores; allow generous headroom per cell.
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True

# nbgrader scores zero for a test cell that writes to stderr. TensorFlow's C++ start-up lines
# ("WARNING: All log messages before absl::InitializeLog() ...", "I0000 ... port.cc:153] ...")
# are not the student's fault: drop those outputs before grading.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(?m)(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|^[IWE]\d{4} [\d:.]+\s+\d+ [\w.]+\.cc:\d+\])"
)
