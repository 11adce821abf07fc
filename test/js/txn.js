// kafkajs transactions against Eddy: one transaction that produces and
// commits consumer offsets (sendOffsets) and is committed, then one that
// is aborted. The Go test reads the topic back with read_committed and
// read_uncommitted consumers and checks the group's offsets.
// Usage: node txn.js <bootstrap> <topic> <group> <count>
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, group, countArg] = process.argv.slice(2);
const count = parseInt(countArg || '100', 10);

async function main() {
  const kafka = new Kafka({ clientId: 'eddy-kafkajs-txn', brokers: bootstrap.split(','), logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer({ transactionalId: `${topic}-txn`, maxInFlightRequests: 1, idempotent: true });
  await producer.connect();

  const committed = await producer.transaction();
  const messages = [];
  for (let i = 0; i < count; i++) messages.push({ key: `c${i}`, value: `committed-${i}` });
  await committed.send({ topic, messages });
  await committed.sendOffsets({
    consumerGroupId: group,
    topics: [{ topic, partitions: [{ partition: 0, offset: '42' }, { partition: 1, offset: '7' }] }],
  });
  await committed.commit();

  const aborted = await producer.transaction();
  const more = [];
  for (let i = 0; i < count; i++) more.push({ key: `a${i}`, value: `aborted-${i}` });
  await aborted.send({ topic, messages: more });
  await aborted.sendOffsets({
    consumerGroupId: group,
    topics: [{ topic, partitions: [{ partition: 0, offset: '1000' }] }],
  });
  await aborted.abort();

  await producer.disconnect();
  console.log(JSON.stringify({ committed: count, aborted: count }));
}

main().catch((err) => { console.error(err); process.exit(1); });
