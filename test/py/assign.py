"""librdkafka's admin API (Debian's python3-confluent-kafka) against Eddy:
create a topic with a manual replica assignment of three partitions, then
grow it to five with an assignment for the two new ones, as admin tools
that always send assignments do. Prints the partition count Metadata
reports after each step, as JSON; the Go test checks them.

Usage: python3 assign.py <bootstrap> <topic>
"""
import json
import sys

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def partitions(admin, topic):
    return len(admin.list_topics(topic, timeout=30).topics[topic].partitions)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    broker = sorted(admin.list_topics(timeout=30).brokers)[0]
    new = NewTopic(topic, 3, replica_assignment=[[broker], [broker], [broker]])
    for fut in admin.create_topics([new], operation_timeout=30).values():
        fut.result(30)
    created = partitions(admin, topic)
    grow = NewPartitions(topic, 5, replica_assignment=[[broker], [broker]])
    for fut in admin.create_partitions([grow], operation_timeout=30).values():
        fut.result(30)
    print(json.dumps({"created": created, "grown": partitions(admin, topic)}))


if __name__ == "__main__":
    main()
