#!/bin/sh
# mpirun's remote agent for hosts made of Linux network namespaces (what ssh is between real
# hosts): `netns_agent.sh HOST COMMAND...` runs COMMAND as a shell command line, like ssh does,
# inside the namespace of HOST with HOST as its host name. The map HOST -> namespace comes from
# $FLASHLINE_NETNS_MAP ("host-a=ns-a host-b=ns-b").
host=$1
shift
ns=
for pair in $FLASHLINE_NETNS_MAP; do
  [ "${pair%%=*}" = "$host" ] && ns=${pair#*=}
done
if [ -z "$ns" ]; then
  echo "netns_agent: unknown host '$host' (known: $FLASHLINE_NETNS_MAP)" >&2
  exit 255
fi
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$host" "$*"
