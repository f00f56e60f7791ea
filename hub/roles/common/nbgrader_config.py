# nbgrader's settings for every user of the hub (students and instructors): the course's own
# settings (../../../nbgrader_config.py: course id, Validate's time limit, TensorFlow's log lines
# ignored) and the exchange, the folder through which assignments, submissions and feedback pass.
# nbgrader's documentation, "Using nbgrader with JupyterHub" and "Managing assignment files": a
# single-host hub shares one exchange folder, writable by everyone with the sticky bit (hub/setup.py
# makes it 1777); nbgrader gives each course's inbound/outbound/feedback folders their own modes.
import os
from pathlib import Path

c = get_config()  # noqa: F821
load_subconfig("nbgrader_config.py", path=str(Path(__file__).resolve().parents[3]))  # noqa: F821
c.Exchange.root = os.environ.get("DLCOURSE_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = "dlcourse"
