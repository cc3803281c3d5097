#!/bin/sh
# Stages the image's root file system in DIR: BINARY (ghostrace) stripped at
# /usr/local/bin/ghostrace, and the shared libraries it loads (as `ldd` lists them)
# at their own paths; nothing else (no shell, no package manager).
# Usage: deploy/container/rootfs.sh BINARY DIR
set -eu
[ $# -eq 2 ] || { echo "usage: $0 BINARY DIR" >&2; exit 2; }
bin=$1 out=$2
rm -rf "$out"
mkdir -p "$out/usr/local/bin"
strip -o "$out/usr/local/bin/ghostrace" "$bin"
# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and the loader's "/lib64/ld-linux-x86-64.so.2 (0x…)".
for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
