#!/bin/bash
# The tree follows .clang-format (STYLE.md item 10).
. "$(dirname "$0")/../lib/tap.sh"
cd "$KESTREL_ROOT"
if ! command -v clang-format >/dev/null; then
	tap_skip "clang-format check" "clang-format is not installed"
	tap_done
fi
files=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -z "$files" ] && files=$(find . -path ./build -prune -o -name '*.[ch]' -print)
bad=$(for f in $files; do clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
if [ -z "$bad" ]; then tap_ok "all C sources are clang-formatted"; else
	echo "not formatted:" $bad; tap_fail "C sources not clang-formatted: $(echo $bad | head -c 300)"; fi
tap_done
