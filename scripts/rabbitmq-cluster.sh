#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, beside its own node, for the tests that kill a
# cluster node (scripts/rabbitmq-node.sh runs each node):
#   scripts/rabbitmq-cluster.sh start PREFIX BASE_PORT DIR   nodes PREFIX-1..3@localhost on 127.0.0.1:
#                                                            BASE_PORT..BASE_PORT+2 (distribution on
#                                                            BASE_PORT+10..+12), data under DIR/1..3
#   scripts/rabbitmq-cluster.sh stop PREFIX                  stops the three
# A node killed with `scripts/rabbitmq-node.sh kill PREFIX-N` and started again with
# `scripts/rabbitmq-node.sh start PREFIX-N PORT DIST DIR/N` rejoins the cluster by itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
action=${1:?start or stop}
prefix=${2:?a name prefix}

case "$action" in
start)
  base=${3:?base port} dir=${4:?data directory}
  for n in 1 2 3; do
    "$here/rabbitmq-node.sh" start "$prefix-$n" $((base + n - 1)) $((base + 9 + n)) "$dir/$n" &
  done
  wait
  for n in 2 3; do
    rabbitmqctl -n "$prefix-$n@localhost" -q stop_app
    rabbitmqctl -n "$prefix-$n@localhost" -q join_cluster "$prefix-1@localhost"
    rabbitmqctl -n "$prefix-$n@localhost" -q start_app
  done
  rabbitmqctl -n "$prefix-1@localhost" -q await_online_nodes 3 --timeout 60
  ;;
stop)
  for n in 1 2 3; do "$here/rabbitmq-node.sh" stop "$prefix-$n" & done
  wait
  ;;
*)
  echo "usage: $0 start PREFIX BASE_PORT DIR | stop PREFIX" >&2
  exit 2
  ;;
esac
