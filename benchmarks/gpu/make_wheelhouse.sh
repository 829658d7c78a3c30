#!/usr/bin/env bash
# Fetch the wheels a network-less CUDA machine needs for fastvmt (benchmarks/gpu/wheels.txt) into
# benchmarks/gpu/wheelhouse/: binary wheels for CPython 3.12 on manylinux x86-64 (PYTHON_VERSION, PLATFORMS
# override), no dependencies; a package marked 'sdist' is built here from its source distribution instead.
#
#   bash benchmarks/gpu/make_wheelhouse.sh [--dry-run] [DEST]
#
# --dry-run prints the packages and pip commands and fetches nothing. Run it where PyPI is reachable, then copy
# the checkout with the wheelhouse (git-ignored) to the GPU machine and run `bash benchmarks/gpu/run.sh` there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
dest=${1:-$here/wheelhouse}
python=${PYTHON:-python3}
python_version=${PYTHON_VERSION:-3.12}
# pip matches manylinux tags exactly: name every glibc level up to the target's (Ubuntu 24.04 has glibc 2.39).
platforms=${PLATFORMS:-"manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64
  manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
  manylinux1_x86_64"}

binary=() source=()
while read -r spec how _; do
    case "$how" in
        "") binary+=("$spec") ;;
        sdist) source+=("$spec") ;;
        *) echo "wheels.txt: unknown marker '$how' after $spec (expected nothing or 'sdist')" >&2; exit 2 ;;
    esac
done < <(sed -e 's/#.*//' "$here/wheels.txt" | grep -v '^[[:space:]]*$')

download=(-m pip download --no-deps --only-binary=:all: --python-version "$python_version" --implementation cp
          --dest "$dest")
for platform in $platforms; do download+=(--platform "$platform"); done
build=(-m pip wheel --no-deps --no-binary=:all: --wheel-dir "$dest")

echo "binary wheels (${#binary[@]}), from $here/wheels.txt:"
printf '  %s\n' "${binary[@]}"
echo "built from source (${#source[@]}):"
printf '  %s\n' "${source[@]}"
echo "command: $python ${download[*]} <binary wheels>"
echo "command: $python ${build[*]} <built from source>"
if [ "$dry_run" = 1 ]; then
    echo "dry run: nothing fetched"
    exit 0
fi
mkdir -p "$dest"
"$python" "${download[@]}" "${binary[@]}"
if [ "${#source[@]}" -gt 0 ]; then "$python" "${build[@]}" "${source[@]}"; fi

# Exactly one wheel per listed package: a stale other version would make the offline install ambiguous.
declare -A wanted=()
for spec in "${binary[@]}" "${source[@]}"; do
    name=$(echo "${spec%%==*}" | tr 'A-Z-' 'a-z_')
    wanted[$name]=${spec#*==}
done
for wheel in "$dest"/*.whl; do
    base=$(basename "$wheel")
    name=$(echo "${base%%-*}" | tr 'A-Z-' 'a-z_')
    version=$(echo "$base" | cut -d- -f2)
    if [ "${wanted[$name]:-}" != "$version" ]; then
        echo "removing $base: not in wheels.txt at that version"
        rm -f "$wheel"
    fi
done
echo "wheelhouse $dest:"
ls -l "$dest"
du -sh "$dest" | awk '{print "size: " $1}'
