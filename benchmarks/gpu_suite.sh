#!/usr/bin/env bash
# benchmarks/gpu_suite.py under the python that holds torch (python3 on the GPU machine); see its docstring.
exec "${PYTHON:-python3}" "$(dirname "$0")/gpu_suite.py" "$@"
