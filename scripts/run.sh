#!/usr/bin/env bash
# Set up a virtual environment for sklearn_lt (once) and run a job in it.
#
#   bash scripts/run.sh benchmark [args]   # the main job: benchmark table on bundled real data
#   bash scripts/run.sh test [pytest args] # the whole test suite
#
# torch: when the environment has no torch yet, the CPU build torch==2.13.0 is
# installed first (SKLEARN_LT_TORCH overrides the requirement, TORCH_INDEX_URL
# the index, e.g. a CUDA index). A torch that is already there, CUDA or not,
# is left alone. VENV chooses the environment's folder (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-}"
shift || true
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv" >&2
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip -q --disable-pip-version-check)
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
    torch_req="${SKLEARN_LT_TORCH:-torch==2.13.0}"
    echo "== installing $torch_req" >&2
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
        "${pip[@]}" install "$torch_req" --index-url "$TORCH_INDEX_URL"
    else
        "${pip[@]}" install "$torch_req"
    fi
fi
extras="plot"
[ "$job" = "test" ] && extras="test"
echo "== installing sklearn_lt[$extras]" >&2
log="$(mktemp)"
if ! "${pip[@]}" install -e ".[$extras]" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    exit 1
fi
rm -f "$log"
"$venv/bin/python" -c "import sklearn_lt, torch; print('sklearn_lt', sklearn_lt.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())" >&2

case "$job" in
    benchmark)
        exec "$venv/bin/python" -m sklearn_lt.bench "$@"
        ;;
    test)
        # lint first: a ruff finding fails the job like a failing test
        "$venv/bin/python" -m ruff check .
        exec "$venv/bin/python" -m pytest -n 2 --durations=15 "$@"
        ;;
    *)
        echo "usage: bash scripts/run.sh {benchmark|test} [args]" >&2
        exit 2
        ;;
esac
