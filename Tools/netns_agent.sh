#!/bin/bash
# Open MPI's launch agent for Tools/mpi_netns_test.sh (mpirun --mca plm_rsh_agent): mpirun calls
# it as `netns_agent.sh HOST COMMAND...` to start its daemon on HOST, as it would call ssh. Here
# HOST is a network namespace of this machine, ${STRATA_NETNS_PREFIX}HOST: the daemon (and the
# rank it starts) run inside it, with a host name of their own (a UTS namespace), so Open MPI
# sees two machines that reach each other only over TCP.
host=$1
shift
exec ip netns exec "${STRATA_NETNS_PREFIX:?}$host" unshare --uts sh -c "hostname $host; $*"
