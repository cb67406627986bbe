#!/bin/sh
# Run the benchmarks on both topologies (SQLite files, then PostgreSQL + MariaDB)
# and save each output under benchmarks/results/<script>-<topology>-<date>.txt.
#
#   benchmarks/run.sh                          # with the project's .venv (python3 dev.py test)
#   PYTHON=/tmp/v613/bin/python benchmarks/run.sh
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
    echo "No $PYTHON: create it with 'python3 dev.py test', or set PYTHON=/path/to/python." >&2
    exit 2
fi
"$PYTHON" benchmarks/bench_prefetch.py --topology all --sizes 10000,100000 --repeat 5 --save
"$PYTHON" benchmarks/bench_select_related.py --topology all --sizes 10000,100000 --repeat 3 --save
"$PYTHON" benchmarks/bench_cascade.py --topology all --size 10000 --repeat 3 --save
"$PYTHON" benchmarks/bench_verify.py --topology all --save
"$PYTHON" benchmarks/bench_incremental.py --topology all --save
"$PYTHON" benchmarks/bench_capture.py --topology all --rows 100000 --save
