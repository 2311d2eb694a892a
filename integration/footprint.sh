#!/bin/bash
# The installed footprint of a release build: installs it with
# openwrt-package/install.sh (the package's own file list) into a scratch
# directory, prints each file's size, the total, and the tree as an ipk
# (tar.gz) and squashfs (xz) would hold it. With --check, compares every
# file and the total with size-budget.txt and fails naming what is over.
#
# Usage: integration/footprint.sh [--check] [MWAN_BINARY]
#        (default target/release/mwan; build it with `make release`)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
bin=${1:-$here/target/release/mwan}
budget=$here/size-budget.txt

[ -f "$bin" ] || { echo "footprint: $bin not found: run 'make release'" >&2; exit 1; }
tree=$(mktemp -d /tmp/mwan-footprint.XXXXXX)
trap 'rm -rf "$tree"' EXIT
"$here/openwrt-package/install.sh" "$bin" "$tree"

total=0
declare -A size
while IFS= read -r f; do
	rel=/${f#"$tree"/}
	size[$rel]=$(stat -c %s "$f")
	total=$((total + size[$rel]))
done < <(find "$tree" -type f | sort)

gz=$(tar -C "$tree" -cf - . | gzip -9 | wc -c)
xz=$(tar -C "$tree" -cf - . | xz -9e | wc -c)
echo "installed files ($bin):"
for rel in $(printf '%s\n' "${!size[@]}" | sort); do
	printf '  %-40s %9d bytes\n' "$rel" "${size[$rel]}"
done
while IFS= read -r l; do
	printf '  %-40s -> %s\n' "/${l#"$tree"/}" "$(readlink "$l")"
done < <(find "$tree" -type l | sort)
printf '  %-40s %9d bytes (%d KiB)\n' total "$total" $((total / 1024))
printf '  %-40s %9d bytes\n' "tar | gzip -9 (as in an ipk)" "$gz" "tar | xz -9e (as on squashfs)" "$xz"

[ $check = 1 ] || exit 0
over=0
declare -A budgeted
while read -r path limit _; do
	case $path in ''|'#'*) continue ;; esac
	budgeted[$path]=1
	if [ "$path" = total ]; then
		actual=$total
	elif [ -n "${size[$path]+set}" ]; then
		actual=${size[$path]}
	else
		echo "size budget: $path is budgeted but not installed" >&2; over=1; continue
	fi
	if [ "$actual" -gt "$limit" ]; then
		echo "size budget: $path is $actual bytes, over its budget of $limit by $((actual - limit))" >&2
		over=1
	fi
done < "$budget"
for rel in "${!size[@]}"; do
	[ -n "${budgeted[$rel]+set}" ] || { echo "size budget: $rel is installed but has no budget in size-budget.txt" >&2; over=1; }
done
if [ $over = 1 ]; then
	echo "size budget: FAILED (size-budget.txt; docs/footprint.md says how to measure and trim)" >&2
	exit 1
fi
echo "size budget: every file and the total within size-budget.txt"
