# JupyterHub for the course on one machine (`make hub`; book/instructors.md, *Running a class on
# JupyterHub*). Every user is a local system user; their Jupyter servers run as that user, with the
# course's virtual environment, and share files through nbgrader's exchange folder.
#
# `hub/setup.py` (run by `make hub`, as root) creates the users, the exchange and the instructor's
# course folder, and writes <state>/users.json, which this file reads. Settings come from the
# environment, so that the tests can run a hub of their own beside a real one:
#   DLCOURSE_HUB_STATE     folder of the hub's database, cookie secret and users.json (default .hub/)
#   DLCOURSE_EXCHANGE      nbgrader's exchange folder (default /srv/nbgrader/exchange)
#   DLCOURSE_HUB_PORT      the public port, on 127.0.0.1 (default 8000); the hub's API and the proxy's
#                          API take DLCOURSE_HUB_API_PORT and DLCOURSE_PROXY_API_PORT (8081, 8001)
#
# For a real class, change what the comments marked "A REAL CLASS" say.
import json
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821

HUB = Path(__file__).resolve().parent
COURSE = HUB.parent                         # the repository: the course package and hub/roles/
VENV_BIN = Path(sys.executable).parent      # the course's .venv/bin: JupyterHub runs from it
STATE = Path(os.environ.get("DLCOURSE_HUB_STATE", COURSE / ".hub")).resolve()
EXCHANGE = os.environ.get("DLCOURSE_EXCHANGE", "/srv/nbgrader/exchange")
USERS = json.loads((STATE / "users.json").read_text())   # {"instructors": [...], "students": [...]}

# --- the hub and its proxy, on loopback -----------------------------------------------------------
# A REAL CLASS: serve it to the students' network behind TLS: c.JupyterHub.ip = "0.0.0.0" (or a
# reverse proxy such as nginx in front), c.JupyterHub.ssl_cert / ssl_key, and a real port.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ.get("DLCOURSE_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("DLCOURSE_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('DLCOURSE_PROXY_API_PORT', '8001')}"
# configurable-http-proxy, installed from npm by `make hub` (hub/package.json, with Debian's Node)
c.ConfigurableHTTPProxy.command = [str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.log_datefmt = "%H:%M:%S"

# --- who may log in ---------------------------------------------------------------------------
# PAM: the machine's own accounts and passwords (those hub/setup.py created). Sessions are not
# opened (no systemd-logind in a container; JupyterHub's documented setting for that case).
# A REAL CLASS: use the university's login instead, for example
#   c.JupyterHub.authenticator_class = "ldapauthenticator.LDAPAuthenticator"   (pip install jupyterhub-ldapauthenticator)
#   c.JupyterHub.authenticator_class = "oauthenticator.generic.GenericOAuthenticator"  (OIDC/SAML gateways)
# and, since each user's server runs as a system user of this machine, either create the users
# beforehand (hub/setup.py --instructor ... --students ...) or set c.LocalAuthenticator.create_system_users = True
# with an authenticator class that is a LocalAuthenticator. Keep allowed_users (or the
# authenticator's allowed groups) and the instructors list below in step with the roster.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = set(USERS["instructors"]) | set(USERS["students"])
c.Authenticator.admin_users = set(USERS["instructors"])

# --- each user's server: the course's environment, nbgrader's extensions for the user's role ------
c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 300       # a busy 2-core machine starts JupyterLab slowly
c.Spawner.http_timeout = 300
c.Spawner.environment = {
    # nbgrader runs `alembic` from PATH; TensorFlow's C++ log lines would score a test cell zero.
    "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "DLCOURSE_EXCHANGE": EXCHANGE,
}


def role_of(username: str) -> str:
    return "instructor" if username in USERS["instructors"] else "student"


def pre_spawn_hook(spawner):
    # hub/roles/<role>/ holds the role's Jupyter settings: which of nbgrader's extensions are on
    # (nbgrader's documented split: students get the assignment list and Validate; instructors the
    # formgrader, the course list and the create-assignment toolbar too) and its nbgrader_config.py;
    # hub/roles/common/ holds the exchange's settings for everyone.
    role = role_of(spawner.user.name)
    spawner.environment["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(HUB / "roles" / role), str(HUB / "roles" / "common")])
    spawner.environment["DLCOURSE_ROLE"] = role


c.Spawner.pre_spawn_hook = pre_spawn_hook
