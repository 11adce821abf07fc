"""librdkafka's transactional producer (Debian's python3-confluent-kafka)
against Eddy: one transaction that produces and commits consumer offsets
and is committed, then one that is aborted. The Go test reads the topic
back with read_committed and read_uncommitted consumers.

Usage: python3 txn.py <bootstrap> <topic> <group> <count>
"""
import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        fut.result(30)

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": topic + "-txn",
        "transaction.timeout.ms": 60000,
    })
    producer.init_transactions(30)

    # A consumer only to name the group in send_offsets_to_transaction.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})

    producer.begin_transaction()
    for i in range(count):
        producer.produce(topic, key=f"c{i}", value=f"committed-{i}", partition=i % 2)
    producer.send_offsets_to_transaction(
        [TopicPartition(topic, 0, 42), TopicPartition(topic, 1, 7)],
        consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)

    producer.begin_transaction()
    for i in range(count):
        producer.produce(topic, key=f"a{i}", value=f"aborted-{i}", partition=i % 2)
    producer.flush(30)
    producer.abort_transaction(30)

    consumer.close()
    print(json.dumps({"committed": count, "aborted": count}))


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        print(f"kafka error: {e}", file=sys.stderr)
        sys.exit(1)
