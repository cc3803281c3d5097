#!/usr/bin/env bash
# Builds, vets and runs every scenario without ghostrace: checks that each
# program builds with the given Go toolchain(s), that `go vet` is clean, and
# that each program exits with the status its expect.json names (2 and
# "fatal error: concurrent map writes" for the crash program) within 10 s.
#
#   testdata/scenarios/verify.sh [-n RUNS] [-t CPUS] [-r] GO [GO...]
#     -n RUNS  run each program RUNS times per toolchain (default 1; 0 = build and vet only)
#     -t CPUS  run under `taskset -c CPUS` (e.g. -t 0 for one CPU)
#     -r       also build with -race (CGO_ENABLED=1) and report whether the
#              race detector found a data race, next to expect.json's race_detector
#     GO       path of a go binary, e.g. /usr/lib/go-1.19/bin/go
# Only the standard library is used; no network access is needed.
set -u
cd "$(dirname "$0")"
runs=1 cpus="" race=0
while getopts "n:t:r" o; do
	case $o in
	n) runs=$OPTARG ;;
	t) cpus=$OPTARG ;;
	r) race=1 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-n RUNS] [-t CPUS] [-r] GO [GO...]" >&2; exit 2; }
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod
export GOCACHE=${GOCACHE:-/tmp/gocache-scen} GOPATH=${GOPATH:-/tmp/gopath-scen}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
scenarios=$(for d in */expect.json; do dirname "$d"; done)
for go in "$@"; do
	ver=$("$go" env GOVERSION)
	bin=$out/$ver
	mkdir -p "$bin"
	if ! "$go" build -o "$bin/" ./... 2>"$out/build.err"; then
		echo "FAIL $ver build"; cat "$out/build.err"; fail=1; continue
	fi
	if ! "$go" vet ./... 2>"$out/vet.err"; then
		echo "FAIL $ver vet"; cat "$out/vet.err"; fail=1
	fi
	echo "ok   $ver build + vet ($(echo $scenarios | wc -w) programs)"
	for s in $scenarios; do
		want=$(grep -o '"exit": *[0-9]*' "$s/expect.json" | grep -o '[0-9]*$')
		for i in $(seq 1 "$runs"); do
			start=$(date +%s%N)
			if [ -n "$cpus" ]; then
				timeout 10 taskset -c "$cpus" "$bin/$s" >"$out/o" 2>"$out/e"; rc=$?
			else
				timeout 10 "$bin/$s" >"$out/o" 2>"$out/e"; rc=$?
			fi
			ms=$((($(date +%s%N) - start) / 1000000))
			ok=1
			[ "$rc" = "$want" ] || ok=0
			if [ "$want" = 2 ]; then
				grep -q 'fatal error: concurrent map writes' "$out/e" || ok=0
			else
				[ ! -s "$out/e" ] || ok=0
			fi
			line=$(grep -m1 "^$s" "$out/o")
			if [ $ok = 1 ]; then
				printf 'ok   %-8s %-36s rc=%s %5dms  %s\n' "$ver" "$s" "$rc" "$ms" "$line"
			else
				printf 'FAIL %-8s %-36s rc=%s (want %s) %5dms\n' "$ver" "$s" "$rc" "$want" "$ms"
				head -5 "$out/e"; fail=1
			fi
		done
	done
	if [ $race = 1 ]; then
		rbin=$out/$ver-race
		mkdir -p "$rbin"
		if ! CGO_ENABLED=1 "$go" build -race -o "$rbin/" ./... 2>"$out/build.err"; then
			echo "FAIL $ver -race build"; cat "$out/build.err"; fail=1; continue
		fi
		for s in $scenarios; do
			timeout 120 "$rbin/$s" >"$out/o" 2>"$out/e"; rc=$?
			n=$(grep -c 'WARNING: DATA RACE' "$out/e")
			got=false; [ "$n" -gt 0 ] && got=true
			want=$(grep -o '"race_detector": *[a-z]*' "$s/expect.json" | grep -o '[a-z]*$')
			st=ok
			if [ "$got" != "$want" ]; then
				# expect.json explains scenarios whose -race result varies between runs
				if grep -q '"race_detector_note"' "$s/expect.json"; then st=VARY; else st=DIFF; fail=1; fi
			fi
			printf '%-4s %-8s -race %-36s rc=%s races=%s (expect.json: %s)\n' "$st" "$ver" "$s" "$rc" "$n" "$want"
		done
	fi
done
exit $fail
