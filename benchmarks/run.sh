#!/bin/sh
# Run the benchmarks on both topologies (SQLite files, then PostgreSQL + MariaDB)
# and save each output under benchmarks/results/<script>-<topology>-<date>.txt.
#
#   benchmarks/run.sh                          # with the project's .venv (python3 dev.py test)
#   PYTHON=/tmp/v613/bin/python benchmarks/run.sh
#   benchmarks/run.sh --smoke                  # every script at tiny sizes, nothing saved
#
# --smoke proves only that the scripts still run against the library as it is (their
# checks of counts raise, so a wrong result fails too): its figures mean nothing.
# .ci/run runs it.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
    echo "No $PYTHON: create it with 'python3 dev.py test', or set PYTHON=/path/to/python." >&2
    exit 2
fi
if [ "${1:-}" = "--smoke" ]; then
    export BENCH_DB_SUFFIX="${BENCH_DB_SUFFIX:-smoke}"
    smoke() {
        echo "== $*"
        "$PYTHON" "$@" >/dev/null
    }
    smoke benchmarks/bench_prefetch.py --topology all --sizes 200 --repeat 1 --no-limits
    smoke benchmarks/bench_select_related.py --topology all --sizes 200 --repeat 1
    smoke benchmarks/bench_cascade.py --topology all --size 200 --repeat 1
    smoke benchmarks/bench_verify.py --topology all --refs 2000 --big-refs 4000 \
        --sparse-rows 20000 --repeat 1
    smoke benchmarks/bench_incremental.py --topology all --rows 2000 --repeat 1
    smoke benchmarks/bench_capture.py --topology all --smoke
    echo "benchmarks smoke: every script ran"
    exit 0
fi
"$PYTHON" benchmarks/bench_prefetch.py --topology all --sizes 10000,100000 --repeat 5 --save
"$PYTHON" benchmarks/bench_select_related.py --topology all --sizes 10000,100000 --repeat 3 --save
"$PYTHON" benchmarks/bench_cascade.py --topology all --size 10000 --repeat 3 --save
"$PYTHON" benchmarks/bench_verify.py --topology all --save
"$PYTHON" benchmarks/bench_incremental.py --topology all --save
"$PYTHON" benchmarks/bench_capture.py --topology all --rows 100000 --save
