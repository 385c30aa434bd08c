#!/usr/bin/env bash
# A 2-stage x 2-lane plan across two "hosts" made of Linux network namespaces joined by a veth
# pair: distinct host names, Open MPI's TCP transport between them, mpirun's remote agent a
# script that enters the namespace (what ssh does between real hosts; docs/multi-host.md).
# Checks: the ids equal the single-process run's; killing a rank on the second host stops the
# whole job within 10 s and the report names that host.
# Usage: multihost_test.sh FLASHLINE MODEL_DIR WORK_DIR. Exits 77 (skipped) where namespaces
# cannot be made (not root, no CAP_SYS_ADMIN/CAP_NET_ADMIN, no ip or unshare).
set -uo pipefail
flashline=$1
model=$(realpath "$2")
work=$3
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "no ip command (iproute2)"
command -v unshare >/dev/null || skip "no unshare command (util-linux)"
command -v mpirun >/dev/null || skip "no mpirun"

tag=fl$$
ns_a=${tag}a ns_b=${tag}b
host_a=${tag}-host-a host_b=${tag}-host-b
net=10.$((200 + $$ % 50)).$(($$ % 250)).
cleanup() {
  for ns in "$ns_a" "$ns_b"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
}
trap cleanup EXIT
ip netns add "$ns_a" 2>/dev/null || skip "ip netns add is not permitted here"
ip netns add "$ns_b" || skip "ip netns add is not permitted here"
ip link add "${tag}va" type veth peer name "${tag}vb" || skip "cannot create a veth pair"
ip link set "${tag}va" netns "$ns_a" && ip link set "${tag}vb" netns "$ns_b" || fail "moving the veth ends"
ip -n "$ns_a" addr add "${net}1/24" dev "${tag}va" && ip -n "$ns_b" addr add "${net}2/24" dev "${tag}vb" ||
  fail "addressing the veth ends"
for ns in "$ns_a" "$ns_b"; do
  ip -n "$ns" link set lo up && ip -n "$ns" link set dev "${tag}v${ns: -1}" up || fail "bringing up links in $ns"
  # `ip netns exec` bind-mounts /etc/netns/NS/hosts over /etc/hosts: each host resolves both names.
  mkdir -p "/etc/netns/$ns"
  printf '127.0.0.1 localhost\n%s1 %s\n%s2 %s\n' "$net" "$host_a" "$net" "$host_b" >"/etc/netns/$ns/hosts"
done
ip netns exec "$ns_a" unshare --uts true 2>/dev/null || skip "unshare --uts is not permitted here"
ip netns exec "$ns_a" ip route get "${net}2" >/dev/null 2>&1 || fail "$host_a has no route to $host_b"

mkdir -p "$work"
rm -f "$work"/*
cat >"$work/cluster.yaml" <<YAML
name: two-namespaces
nodes:
  - {name: a, host: $host_a, cpus: 2, devices: [{kind: cpu, count: 2, cores: 1, memory: 4GB, memory_bandwidth: 5GB/s}]}
  - {name: b, host: $host_b, cpus: 2, devices: [{kind: cpu, count: 2, cores: 1, memory: 4GB, memory_bandwidth: 5GB/s}]}
links:
  intra_node: {bandwidth: 4GB/s, latency: 1us}
  inter_node: {bandwidth: 1GB/s, latency: 20us}
YAML
"$flashline" plan --cluster "$work/cluster.yaml" --model "$model" --stages 2 --lanes 2 --context 512 \
  -o "$work/plan.yaml" >"$work/plan.txt" 2>&1 || fail "plan: $(cat "$work/plan.txt")"
grep -q "host: $host_b" "$work/plan.yaml" || fail "the plan does not use $host_b"

prompt=5,17,300,42,7,1000,3
expected=$("$flashline" generate --model "$model" --prompt-ids "$prompt" --max-new-tokens 6 2>/dev/null) ||
  fail "single-process generate failed"

export FLASHLINE_NETNS_MAP="$host_a=$ns_a $host_b=$ns_b"
launch=("$flashline" launch --plan "$work/plan.yaml" --model "$model"
  --mca "plm_rsh_agent=$here/netns_agent.sh" --mca pml=ob1 --mca btl=tcp,self
  --mca "btl_tcp_if_include=${net}0/24" --mca "oob_tcp_if_include=${net}0/24")
# mpirun runs on the first host, as it would after `ssh host-a`.
on_host_a() { ip netns exec "$ns_a" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$host_a" "$@"; }

on_host_a "${launch[@]}" -- --prompt-ids "$prompt" --max-new-tokens 6 >"$work/ids.txt" 2>"$work/launch.err" ||
  fail "the two-host run failed: $(tail -20 "$work/launch.err")"
[ "$(cat "$work/ids.txt")" = "$expected" ] ||
  fail "two-host ids $(cat "$work/ids.txt") differ from the single-process ids $expected"
grep -q -- "--hostfile" "$work/launch.err" || fail "launch did not report its mpirun line"
echo "two hosts, 2 stages x 2 lanes over TCP: ids $expected equal the single-process run"

# A rank dies on the second host: everything stops, and the report names the host.
on_host_a "${launch[@]}" -- --prompt-ids "$prompt" --max-new-tokens 100000 >"$work/long.txt" 2>"$work/long.err" &
job=$!
victim=
for _ in $(seq 1 300); do
  for pid in $(ip netns pids "$ns_b" 2>/dev/null); do
    if [ "$(cat /proc/$pid/comm 2>/dev/null)" = flashline ]; then victim=$pid; break; fi
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || { kill "$job"; fail "no flashline rank appeared on $host_b: $(tail -5 "$work/long.err")"; }
sleep 2  # let the ranks get into the generation loop
kill -0 "$job" 2>/dev/null || fail "the long run ended by itself: $(tail -5 "$work/long.err")"
kill -9 "$victim"
start=$(date +%s%N)
for _ in $(seq 1 150); do
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$job" 2>/dev/null; then
  kill -9 "$job"
  fail "15 s after a rank on $host_b was killed the job is still running"
fi
wait "$job"
status=$?
took_ms=$((($(date +%s%N) - start) / 1000000))
took=$((took_ms / 1000)).$(printf %03d $((took_ms % 1000)))
[ "$status" != 0 ] || fail "the job exited 0 although a rank was killed"
[ "$took_ms" -le 10000 ] || fail "the job took ${took}s (> 10 s) to stop after a rank died"
grep -q "$host_b" "$work/long.err" || fail "the error report does not name $host_b: $(tail -20 "$work/long.err")"
for ns in "$ns_a" "$ns_b"; do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    [ "$(cat /proc/$pid/comm 2>/dev/null)" = flashline ] && fail "a flashline rank (pid $pid) survived in $ns"
  done
done
echo "rank pid $victim on $host_b killed: the job stopped in ${took}s with status $status, naming $host_b:"
grep -m1 "$host_b" "$work/long.err"
echo PASS
