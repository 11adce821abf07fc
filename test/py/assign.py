"""librdkafka's admin API (Debian's python3-confluent-kafka) against Eddy:
create a topic with a manual replica assignment of three partitions, then
grow it to five with an assignment for the two new ones, as admin tools
that always send assignments do. Prints the partition count Metadata
reports after each step, as JSON; the Go test checks them.

Usage: python3 assign.py <bootstrap> <topic>
"""
import json
import sys
import time

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def partitions(admin, topic, want):
    """The partition count Metadata reports, asked again (for up to 30 s)
    until it is want: brokers learn new partitions from Postgres shortly
    after the request is answered, as Kafka's brokers do from the
    controller."""
    deadline = time.monotonic() + 30
    while True:
        n = len(admin.list_topics(topic, timeout=30).topics[topic].partitions)
        if n == want or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    broker = sorted(admin.list_topics(timeout=30).brokers)[0]
    new = NewTopic(topic, 3, replica_assignment=[[broker], [broker], [broker]])
    for fut in admin.create_topics([new], operation_timeout=30).values():
        fut.result(30)
    created = partitions(admin, topic, 3)
    grow = NewPartitions(topic, 5, replica_assignment=[[broker], [broker]])
    for fut in admin.create_partitions([grow], operation_timeout=30).values():
        fut.result(30)
    print(json.dumps({"created": created, "grown": partitions(admin, topic, 5)}))


if __name__ == "__main__":
    main()
