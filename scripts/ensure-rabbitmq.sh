#!/usr/bin/env bash
# Starts the local RabbitMQ when it is not answering; the broker tests talk to the real one.
set -euo pipefail
if rabbitmqctl -q status >/dev/null 2>&1; then
  exit 0
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "RabbitMQ is not installed: run scripts/setup-system.sh" >&2
  exit 1
fi
echo "starting RabbitMQ" >&2
rabbitmq-server -detached
for _ in $(seq 1 60); do
  if rabbitmqctl -q await_startup >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "RabbitMQ did not start within 60 s" >&2
exit 1
