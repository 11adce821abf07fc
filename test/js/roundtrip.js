// kafkajs round trip against Eddy: produce N keyed records with headers,
// consume them back through a consumer group, print a JSON summary.
// Usage: node roundtrip.js <bootstrap> <topic> <count>
'use strict';
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy');

const [bootstrap, topic, countArg] = process.argv.slice(2);
const count = parseInt(countArg || '1000', 10);

async function main() {
  const kafka = new Kafka({ clientId: 'eddy-kafkajs-test', brokers: bootstrap.split(','), logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const messages = [];
    for (let j = i; j < Math.min(i + batch, count); j++) {
      messages.push({ key: `k${j}`, value: `v${j}`, headers: { n: `${j}` } });
    }
    await producer.send({ topic, messages, acks: -1, compression: i % 200 === 0 ? CompressionTypes.GZIP : CompressionTypes.None });
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-group` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Set();
  let bad = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${seen.size} of ${count}`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        const j = message.key.toString().slice(1);
        if (message.value.toString() !== `v${j}` || message.headers.n.toString() !== j) bad++;
        seen.add(j);
        if (seen.size === count) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  console.log(JSON.stringify({ produced: count, consumed: seen.size, bad }));
}

main().catch((err) => { console.error(err); process.exit(1); });
