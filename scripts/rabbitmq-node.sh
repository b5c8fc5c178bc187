#!/usr/bin/env bash
# A RabbitMQ node of its own beside the machine's, for the tests that kill the broker itself
# (the shared node at :5672 serves every other test and must stay up):
#   scripts/rabbitmq-node.sh start NAME AMQP_PORT DIST_PORT DIR   NAME@localhost on 127.0.0.1:AMQP_PORT,
#                                                                 data under DIR; returns once it serves
#   scripts/rabbitmq-node.sh kill NAME                            kill -9: no shutdown, as a crash
#   scripts/rabbitmq-node.sh stop NAME                            a clean stop
# Started again on the same DIR, a node keeps its durable queues and persistent messages.
set -euo pipefail
action=${1:?start, kill or stop}
name=${2:?a node name}
node="$name@localhost"

case "$action" in
start)
  port=${3:?AMQP port} dist=${4:?distribution port} dir=${5:?data directory}
  mkdir -p "$dir"
  echo "listeners.tcp.default = 127.0.0.1:$port" > "$dir/rabbitmq.conf"
  echo "[]." > "$dir/enabled_plugins"
  : > "$dir/rabbitmq-env.conf"
  # The server drops to the rabbitmq user when started as root: it must own its directory.
  if [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$dir"; fi
  # A node killed a moment ago may still be registered with epmd under this name, and a node
  # cannot start under a name epmd holds: wait until it lets go.
  for _ in $(seq 1 300); do
    epmd -names 2>/dev/null | grep -q "^name $name at" || break
    sleep 0.1
  done
  # The machine's rabbitmq-env.conf names the shared node: this one reads an empty one instead.
  RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_NODENAME="$node" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq" RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_DIST_PORT="$dist" ERL_EPMD_ADDRESS=127.0.0.1 \
    rabbitmq-server -detached
  for _ in $(seq 1 120); do
    if rabbitmqctl -n "$node" -q await_startup --timeout 60 >/dev/null 2>&1; then exit 0; fi
    sleep 0.5
  done
  echo "rabbitmq-node: $node did not start; the end of its log ($dir/log):" >&2
  tail -n 40 "$dir"/log/*.log >&2 2>/dev/null || echo "(no log written)" >&2
  exit 1
  ;;
kill)
  # The node's name is in its environment, not its command line: ask the node for its pid.
  pid=$(rabbitmqctl -n "$node" -q eval 'list_to_integer(os:getpid()).')
  kill -9 "$pid"
  # Until epmd forgets it, a new start under the same name is refused.
  for _ in $(seq 1 100); do
    epmd -names 2>/dev/null | grep -q "^name $name at" || exit 0
    sleep 0.1
  done
  ;;
stop)
  rabbitmqctl -n "$node" -q stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start NAME AMQP_PORT DIST_PORT DIR | kill NAME | stop NAME" >&2
  exit 2
  ;;
esac
