#!/bin/busybox sh
# The boot tier's guest (tracer-user/tests/kernel_boot.rs): PID 1 of an initramfs.
# Runs every case, writes its results between markers to the second serial port
# (the first is the console), then powers off. Every wait is bounded so that a
# hang ends the guest instead of the test's time limit.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
OUT=/dev/ttyS1
say() { echo "@@$*" > $OUT; }
now() { cut -d' ' -f1 /proc/uptime; }
# emit CASE SECTION FILE: the file between markers.
emit() {
  say "begin $1 $2"
  [ -f "$3" ] && cat "$3" > $OUT
  echo > $OUT
  say "end $1 $2"
}
say "boot $(cut -d' ' -f1 /proc/uptime) $(uname -r)"

# `run` of each scenario binary.
for bin in /scenarios/*; do
  case=run:${bin##*/}
  echo "kernel-boot: $case"
  start=$(now)
  ghostrace run --overhead-budget off --json-out /tmp/f.jsonl -- "$bin" > /dev/null 2> /tmp/err
  say "status $case $? $start $(now)"
  emit $case findings /tmp/f.jsonl
  emit $case stderr /tmp/err
  rm -f /tmp/f.jsonl
done

# `attach` to a process already running: a stale list remove every millisecond.
echo "kernel-boot: attach"
start=$(now)
/fixtures/spawn remove 1000000 > /dev/null &
prog=$!
sleep 1
ghostrace attach --pid $prog --duration 3s --overhead-budget off --json-out /tmp/f.jsonl > /dev/null 2> /tmp/err
say "status attach $? $start $(now)"
kill $prog; wait $prog
emit attach findings /tmp/f.jsonl
emit attach stderr /tmp/err
rm -f /tmp/f.jsonl

# The daemon: up, then a Go program started after it is traced from its exec event
# until its finding is out (or the daemon says it cannot trace it); /metrics and
# /readyz scraped while the program still runs.
echo "kernel-boot: daemon"
start=$(now)
ghostrace daemon --listen 127.0.0.1:9560 --overhead-budget off --select 'path:/fixtures/**' > /tmp/daemon.out 2> /tmp/err &
daemon=$!
i=0
until wget -q -O /dev/null http://127.0.0.1:9560/healthz; do
  i=$((i + 1)); [ $i -ge 120 ] && break; sleep 1
done
/fixtures/spawn remove 1000000 > /dev/null &
prog=$!
i=0
until grep -q list_stale_remove /tmp/daemon.out || grep -q 'not tracing' /tmp/err; do
  i=$((i + 1)); [ $i -ge 120 ] && break; sleep 1
done
wget -q -O /tmp/metrics http://127.0.0.1:9560/metrics
wget -q -O /tmp/readyz http://127.0.0.1:9560/readyz || echo "not ready (wget exit $?)" >> /tmp/readyz
kill $prog; wait $prog
kill -TERM $daemon; wait $daemon
say "status daemon $? $start $(now)"
emit daemon readyz /tmp/readyz
emit daemon metrics /tmp/metrics
emit daemon findings /tmp/daemon.out
emit daemon stderr /tmp/err
say "done"
poweroff -f
