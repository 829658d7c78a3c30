#!/usr/bin/env bash
# Measure fastvmt on a CUDA machine without network (docs/benchmarks.md, "Measuring on a GPU"):
#
#   bash benchmarks/gpu/run.sh [--install-only] [kit.py options, e.g. --budget 300 --stages amf,generation]
#
# 1. installs the wheels of benchmarks/gpu/wheelhouse/ (made by make_wheelhouse.sh) that are not installed yet,
#    with pip --no-index --no-deps (never the network, never another torch or triton), and fastvmt itself,
#    editable from this checkout;
# 2. checks the imports fastvmt needs, naming each one that fails;
# 3. runs benchmarks/gpu/kit.py --mode gpu: results.json, results.md and run.log under $OUT (default
#    ./gpu-results), in about 7.5 minutes.
# PYTHON selects the interpreter (default python3). --install-only stops after step 2.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
wheels=$here/wheelhouse
mkdir -p "${OUT:-./gpu-results}"
out=$(cd "${OUT:-./gpu-results}" && pwd)
export PYTHONUNBUFFERED=1
install_only=0
if [ "${1:-}" = "--install-only" ]; then install_only=1; shift; fi
log=$out/install.log
: >"$log"

echo "== environment"
"$python" - <<'EOF'
import sys
print(f"python {sys.version.split()[0]} ({sys.executable})")
try:
    import torch
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "no CUDA device"
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {device}")
except Exception as exc:
    print(f"torch does not import: {type(exc).__name__}: {exc}")
EOF

echo "== installing from $wheels (offline)"
if compgen -G "$wheels/*.whl" >/dev/null; then
    du -sh "$wheels" | awk '{print "wheelhouse size: " $1}'
    # Wheels whose distribution is already installed are kept as they are (whatever the version).
    mapfile -t missing < <("$python" - "$wheels"/*.whl <<'EOF'
import sys
from importlib import metadata
from pathlib import Path

for wheel in sys.argv[1:]:
    name = Path(wheel).name.split("-")[0]
    try:
        print(f"kept {name} {metadata.version(name)} (installed)", file=sys.stderr)
    except metadata.PackageNotFoundError:
        print(wheel)
EOF
    )
    if [ "${#missing[@]}" -gt 0 ]; then
        printf 'installing %s\n' "${missing[@]##*/}"
        if ! "$python" -m pip install --no-index --no-deps --find-links "$wheels" --no-warn-script-location \
                "${missing[@]}" >>"$log" 2>&1; then
            echo "pip install from the wheelhouse FAILED; the end of $log:"
            tail -5 "$log"
        fi
    fi
else
    echo "no wheels in $wheels: run benchmarks/gpu/make_wheelhouse.sh where PyPI is reachable and copy them here;"
    echo "going on with what is installed"
fi

location=$(cd / && "$python" -c "import fastvmt, os; print(os.path.dirname(fastvmt.__file__))" 2>/dev/null)
if [ "$location" = "$root/fastvmt" ]; then
    echo "fastvmt: installed from this checkout"
elif "$python" -m pip install --no-index --no-deps --no-build-isolation -e "$root" >>"$log" 2>&1; then
    echo "fastvmt: installed editable from $root"
else
    echo "fastvmt: the editable install FAILED (the end of $log below); running it from the checkout through"
    echo "PYTHONPATH instead (its version then reads 'not installed' in the results)"
    tail -3 "$log"
    export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
fi

echo "== imports"
(cd "$root" && "$python" "$here/kit.py" --check-imports)
if [ "$install_only" = 1 ]; then exit 0; fi

echo "== kit"
cd "$root" || exit 1
"$python" "$here/kit.py" --mode gpu --out "$out" "$@" 2>&1 | tee "$out/run.log"
status=${PIPESTATUS[0]}
if [ -f "$out/results.md" ]; then
    echo
    cat "$out/results.md"
fi
exit "$status"
