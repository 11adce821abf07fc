// kafkajs consumer group against Eddy: three members of one group share a
// 6-partition topic while a producer writes; one member leaves mid-stream
// and the others take over its partitions. Prints a JSON summary.
// Usage: node groups.js <bootstrap> <topic> <count>
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, countArg] = process.argv.slice(2);
const count = parseInt(countArg || '3000', 10);

async function main() {
  const kafka = new Kafka({ clientId: 'eddy-kafkajs-groups', brokers: bootstrap.split(','), logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
  await admin.disconnect();

  const seen = new Map();
  const members = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  async function startMember(i) {
    const c = kafka.consumer({ groupId: `${topic}-group`, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500 });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({
      eachMessage: async ({ message }) => {
        const v = message.value.toString();
        seen.set(v, (seen.get(v) || 0) + 1);
        if (seen.size === count) done();
      },
    });
    members.push(c);
    return c;
  }

  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  await Promise.all([startMember(0), startMember(1), startMember(2)]);
  const batch = 100;
  let left = false;
  for (let i = 0; i < count; i += batch) {
    const messages = [];
    for (let j = i; j < Math.min(i + batch, count); j++) messages.push({ value: `v${j}` });
    await producer.send({ topic, messages, acks: -1 });
    if (!left && i >= count / 3) {
      left = true;
      await members[1].disconnect(); // leaves the group mid-stream
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await producer.disconnect();

  const timer = setTimeout(() => {
    console.log(JSON.stringify({ produced: count, consumed: seen.size, duplicates: -1 }));
    process.exit(1);
  }, 90000);
  await finished;
  clearTimeout(timer);
  let duplicates = 0;
  for (const n of seen.values()) if (n > 1) duplicates++;
  await Promise.all(members.filter((_, i) => i !== 1).map((c) => c.disconnect()));
  console.log(JSON.stringify({ produced: count, consumed: seen.size, duplicates }));
}

main().catch((err) => { console.error(err); process.exit(1); });
