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
