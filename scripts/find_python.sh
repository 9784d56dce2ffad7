#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12 (3.12 preferred: the pinned stack is checked on it).
# Candidates are *run*, not just looked up: pyenv shims exist on PATH even when
# the version behind them is not selected, and then fail when called.
set -u
ok() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
path_of() { "$@" -c 'import sys; print(sys.executable)'; }

if [ -n "${PYTHON:-}" ]; then
    if ok "$PYTHON"; then path_of "$PYTHON"; exit 0; fi
    echo "error: PYTHON=$PYTHON is not a working Python >= 3.12" >&2; exit 1
fi
for exe in python3.12 python3.13 python3; do
    if command -v "$exe" >/dev/null 2>&1 && ok "$exe"; then path_of "$exe"; exit 0; fi
done
# pyenv: select the version explicitly, then fall back to its versions folder.
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root 2>/dev/null)
    for dir in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -V); do
        v=$(basename "$dir")
        for exe in "$dir/bin/python3" "$dir/bin/python"; do
            if [ -x "$exe" ] && ok "$exe"; then path_of "$exe"; exit 0; fi
        done
        if PYENV_VERSION="$v" ok python3; then PYENV_VERSION="$v" path_of python3; exit 0; fi
    done
fi
echo "error: no Python >= 3.12 found (tried \$PYTHON, python3.12, python3.13, python3, pyenv versions)." >&2
echo "       Install Python 3.12 or newer, or run: make PYTHON=/path/to/python3.12 ..." >&2
exit 1
