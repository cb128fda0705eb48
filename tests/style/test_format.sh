#!/bin/bash
# The tree follows .clang-format (STYLE.md item 10).
. "$(dirname "$0")/../lib/tap.sh"
cd "$KESTREL_ROOT" || exit 1
if ! command -v clang-format >/dev/null; then
	tap_skip "clang-format check" "clang-format is not installed"
	tap_done
fi
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null)
[ ${#files[@]} -eq 0 ] && mapfile -t files < <(find . -path ./build -prune -o -name '*.[ch]' -print)
# One run over every file; each file that needs changes is named in its warnings.
bad=$(clang-format --dry-run "${files[@]}" 2>&1 | sed -n 's/^\([^:]*\.[ch]\):[0-9]*:[0-9]*: .*/\1/p' | sort -u)
if [ -z "$bad" ]; then
	tap_ok "all ${#files[@]} C sources are clang-formatted"
else
	echo "not formatted (make format):" $bad
	tap_fail "C sources not clang-formatted: $(echo $bad | head -c 300)"
fi
tap_done
