# Sourced by the set-up, test and demo scripts: sets PY, the Python that ptl-ext is set up in and run with.
#
#   PYTHON=/path/to/python   that interpreter, as given
#   an active virtual environment (VIRTUAL_ENV) or conda environment (CONDA_PREFIX): its python
#   otherwise: the project-local .venv, created on first use. System-wide Pythons on current Debian and
#   Ubuntu refuse `pip install` (PEP 668), so nothing is installed into them. The .venv sees the system's
#   site-packages, so a torch that is already installed system-wide is reused instead of downloaded again.
#
# The base interpreter for a new .venv is $PTL_EXT_BASE_PYTHON (default python3).

ptl_venv_dir=.venv
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ]; then
    PY=$VIRTUAL_ENV/bin/python
    echo "ptl-ext: using the active virtual environment $VIRTUAL_ENV"
elif [ -n "${CONDA_PREFIX:-}" ]; then
    PY=$CONDA_PREFIX/bin/python
    echo "ptl-ext: using the active conda environment $CONDA_PREFIX"
else
    if [ ! -x "$ptl_venv_dir/bin/python" ]; then
        base=${PTL_EXT_BASE_PYTHON:-python3}
        echo "ptl-ext: no virtual environment is active: creating the project-local $ptl_venv_dir (with $base)"
        if ! "$base" -m venv --system-site-packages "$ptl_venv_dir"; then
            rm -rf "$ptl_venv_dir"
            echo "ptl-ext: '$base -m venv' failed; on Debian/Ubuntu install the venv module first" \
                 "(sudo apt install python3-venv), or activate an environment of your own" >&2
            exit 1
        fi
    fi
    PY=$PWD/$ptl_venv_dir/bin/python
    echo "ptl-ext: no virtual environment is active: using the project-local $ptl_venv_dir" \
         "(activate it with: source $ptl_venv_dir/bin/activate)"
fi
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
    echo "ptl-ext: no Python interpreter at $PY" >&2
    exit 1
fi
