"""The build script refuses clearly when it cannot see torch (a plain, isolated `pip install .`)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_setup_without_torch_says_how_to_install():
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['setup.py', '--name']; "
        "exec(compile(open('setup.py').read(), 'setup.py', 'exec'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0
    assert "cannot import torch" in out.stderr
    assert "pip install --no-build-isolation ." in out.stderr


def test_the_extension_build_folder_persists_across_pip_builds(monkeypatch):
    """`pip install -e` builds in a new temporary folder each time; the build command moves the object
    files to build/temp.* so that ninja recompiles only changed sources."""
    import hashlib
    import sysconfig

    import setuptools

    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(ROOT)
    with open(os.path.join(ROOT, "setup.py")) as fh:
        exec(compile(fh.read(), "setup.py", "exec"), {"__file__": os.path.join(ROOT, "setup.py"), "__name__": "x"})
    command = captured["cmdclass"]["build_ext"](setuptools.Distribution({"ext_modules": captured["ext_modules"]}))
    command.build_temp = "/tmp/pip-editable.build-temp"  # what an editable build sets
    command.ensure_finalized()
    env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]  # one object tree per environment
    tag = f"temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}-{env}"
    assert command.build_temp == os.path.join(ROOT, "build", tag)
    assert command.use_ninja
