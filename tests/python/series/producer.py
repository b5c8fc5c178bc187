"""The series' producer (Part III, `producer/main.py`), written the way the series writes it.

    python producer.py <algorithm> <payload_str>

It declares `tasks` with no property of its own (not durable, no arguments), and publishes
`{"algorithm": ..., "payload": ...}` with no message id, no reply_to and no persistence.
The one deviation: the series connects to `localhost`'s default vhost; this one reads the broker
URL from $AMQP_URL, so each test can point it at a vhost of its own.
"""

import json
import os
import sys

import pika

usage_string: str = "python producer.py <algorithm> <payload_str>"

assert len(sys.argv) > 2, f"Please pass algorithm to run and payload to run it on. Usage: {usage_string}"

algorithm: str = sys.argv[1]
payload: str = sys.argv[2]

amqp_url: str = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(amqp_url))

channel = connection.channel()
channel.queue_declare(queue="tasks")

body = dict(algorithm=algorithm, payload=json.loads(payload))

print("Submitting body", body)

channel.basic_publish(exchange="", routing_key="tasks", body=json.dumps(body))
