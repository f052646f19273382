#!/bin/bash
# Two "machines" on this one (make test-netns; root, iproute2): two network namespaces joined by
# veth pairs on a bridge (10.77.0.0/24), Open MPI starting one rank in each through
# Tools/netns_agent.sh (ip netns exec) and talking TCP alone over that network. Runs
# strata-mpi-check, then `strata train --distributed` (MLP, 4,000 images, 2 epochs) across them.
# Usage: Tools/mpi_netns_test.sh [build folder, default .build/release]. Removes what it made.
set -u
BIN=$(cd "${1:-.build/release}" && pwd)
TOOLS=$(cd "$(dirname "$0")" && pwd)
ID=$$
export STRATA_NETNS_PREFIX="strata$ID-"
BR="stbr$ID"
DIR=$(mktemp -d /tmp/strata-netns-test.XXXXXX)
cleanup() {
    for i in 1 2; do ip netns del "${STRATA_NETNS_PREFIX}ns$i" 2>/dev/null; ip link del "stv$i-$ID" 2>/dev/null; done
    ip link del "$BR" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "mpi_netns_test: FAIL: $*"; exit 1; }

ip link add "$BR" type bridge || fail "cannot make a bridge (needs root and CAP_NET_ADMIN)"
ip addr add 10.77.0.1/24 dev "$BR" && ip link set "$BR" up || fail "cannot bring up $BR"
for i in 1 2; do
    ns="${STRATA_NETNS_PREFIX}ns$i"
    ip netns add "$ns" || fail "cannot make network namespace $ns"
    ip link add "stv$i-$ID" type veth peer name "stp$i-$ID" || fail "cannot make a veth pair"
    ip link set "stp$i-$ID" netns "$ns"
    ip link set "stv$i-$ID" master "$BR"
    ip link set "stv$i-$ID" up
    ip netns exec "$ns" ip addr add "10.77.0.$((i + 1))/24" dev "stp$i-$ID"
    ip netns exec "$ns" ip link set "stp$i-$ID" up
    ip netns exec "$ns" ip link set lo up
done
printf "ns1 slots=1\nns2 slots=1\n" >"$DIR/hosts"
MPIRUN=(timeout --kill-after=10 300 mpirun --allow-run-as-root -np 2 --hostfile "$DIR/hosts"
        --mca plm_rsh_agent "$TOOLS/netns_agent.sh" --mca oob_tcp_if_include 10.77.0.0/24
        --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24)

"${MPIRUN[@]}" bash -c 'echo "rank $OMPI_COMM_WORLD_RANK on host $(hostname), address $(ip -4 -o addr show | grep -o "10\.77\.0\.[0-9]*")"' \
    >"$DIR/out" 2>&1 || { cat "$DIR/out"; fail "mpirun could not start a rank in each namespace"; }
sort "$DIR/out" | sed 's/^/mpi_netns_test: /'
grep -q "rank 0 on host ns1, address 10.77.0.2" "$DIR/out" && grep -q "rank 1 on host ns2, address 10.77.0.3" "$DIR/out" \
    || fail "the ranks are not one in each namespace"

"${MPIRUN[@]}" "$BIN/strata-mpi-check" >"$DIR/out" 2>&1 || { cat "$DIR/out"; fail "strata-mpi-check failed across the namespaces"; }
echo "mpi_netns_test: $(tail -1 "$DIR/out")"

"${MPIRUN[@]}" "$BIN/strata" train --distributed --model mlp --limit 4000 --epochs 2 --out "$DIR/m.safetensors" >"$DIR/out" 2>&1 \
    || { cat "$DIR/out"; fail "strata train --distributed failed across the namespaces"; }
echo "mpi_netns_test: strata train --distributed: $(tail -1 "$DIR/out")"
echo "mpi_netns_test: PASS"
