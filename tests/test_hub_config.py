"""`make hub`'s configuration, read without starting anything (tests/test_hub.py runs the hub)."""
import json
import os
import subprocess
import sys

from nbtools import ROOT

HUB = ROOT / "hub"


def _hub_config(tmp_path, monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    (tmp_path / "users.json").write_text(json.dumps({"instructors": ["teach"], "students": ["ana", "bo"]}))
    monkeypatch.setenv("DLCOURSE_HUB_STATE", str(tmp_path))
    monkeypatch.setenv("DLCOURSE_EXCHANGE", "/srv/exchange-x")
    return PyFileConfigLoader("jupyterhub_config.py", path=str(HUB)).load_config()


def test_the_hub_listens_on_loopback_with_the_projects_proxy_and_pam(tmp_path, monkeypatch):
    c = _hub_config(tmp_path, monkeypatch)
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    (proxy,) = c.ConfigurableHTTPProxy.command
    assert proxy == str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.Authenticator.allowed_users == {"teach", "ana", "bo"} and c.Authenticator.admin_users == {"teach"}
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"


def test_every_users_server_runs_the_course_environment(tmp_path, monkeypatch):
    c = _hub_config(tmp_path, monkeypatch)
    assert c.Spawner.cmd == [str(__import__("pathlib").Path(sys.executable).parent / "jupyterhub-singleuser")]
    env = c.Spawner.environment
    assert env["PATH"].split(":")[0] == str(__import__("pathlib").Path(sys.executable).parent)   # alembic for nbgrader
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "3" and env["DLCOURSE_EXCHANGE"] == "/srv/exchange-x"


def _role_config(role):
    """What nbgrader and Jupyter read in a user's server of this role."""
    probe = (
        "from nbgrader.apps import NbGrader\n"
        "from jupyter_server.serverapp import ServerApp\n"
        "from jupyterlab_server.config import get_page_config\n"
        "from jupyter_core.paths import jupyter_config_path\n"
        "import json, os\n"
        "app = NbGrader(); app.load_config_file()\n"
        "from jupyter_server.extension.config import ExtensionConfigManager\n"
        "s = ServerApp(); s.load_config_file()\n"
        "ext = ExtensionConfigManager(read_config_path=s.config_file_paths).get_jpserver_extensions()\n"
        "ext.update(s.jpserver_extensions)   # as ServerApp merges them\n"
        "labconfig = [os.path.join(p, 'labconfig') for p in jupyter_config_path()]\n"
        "page = get_page_config(labconfig, app_settings_dir='', logger=None).get('disabledExtensions', [])\n"
        "disabled = sorted(page if isinstance(page, list) else [k for k, v in page.items() if v])\n"
        "print(json.dumps({'exchange': app.config.Exchange.root, 'course_id': app.config.CourseDirectory.course_id,\n"
        "  'root': app.config.CourseDirectory.get('root'), 'timeout': app.config.Execute.get('timeout'),\n"
        "  'server': {k: v for k, v in ext.items() if k.startswith('nbgrader')},\n"
        "  'disabled': disabled}))\n")
    env = dict(os.environ, DLCOURSE_EXCHANGE="/srv/exchange-x", HOME="/home/someone",
               JUPYTER_CONFIG_PATH=f"{HUB / 'roles' / role}:{HUB / 'roles' / 'common'}")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd="/", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_students_get_the_assignment_list_and_validate_not_the_formgrader():
    r = _role_config("student")
    assert r["exchange"] == "/srv/exchange-x" and r["course_id"] == "dlcourse"
    assert r["timeout"] == 180, "the course's nbgrader_config.py (Validate's limits) is loaded too"
    assert r["server"].get("nbgrader.server_extensions.formgrader") is False, r
    assert r["server"].get("nbgrader.server_extensions.course_list") is False, r
    assert r["server"].get("nbgrader.server_extensions.assignment_list") is not False, r
    assert r["server"].get("nbgrader.server_extensions.validate_assignment") is not False, r
    assert {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:course-list",
            "@jupyter/nbgrader:create-assignment"} <= set(r["disabled"]), r
    assert "@jupyter/nbgrader:assignment-list" not in r["disabled"]
    assert "@jupyter/nbgrader:validate-assignment" not in r["disabled"]


def test_the_instructor_gets_the_formgrader_on_the_course_folder():
    r = _role_config("instructor")
    assert r["root"] == "/home/someone/dlcourse" and r["exchange"] == "/srv/exchange-x"
    assert all(v is not False for v in r["server"].values()), r
    assert not [d for d in r["disabled"] if d.startswith("@jupyter/nbgrader")], r


def test_the_proxy_is_pinned_by_npms_lock_file():
    lock = json.loads((HUB / "package-lock.json").read_text())
    wanted = json.loads((HUB / "package.json").read_text())["dependencies"]["configurable-http-proxy"]
    assert lock["packages"]["node_modules/configurable-http-proxy"]["version"] == wanted
