// Generate one clip with the AWS SDK for JavaScript v3: upload the request, InvokeEndpointAsync,
// then wait for the output (audio) or the failure object (the error, printed; exit 1).
// Usage: node examples/invoke_async.mjs BUCKET ENDPOINT REQUEST.json OUT.wav
import { readFile, writeFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  InvokeEndpointAsyncCommand,
  SageMakerRuntimeClient,
} from "@aws-sdk/client-sagemaker-runtime";

const [bucket, endpointName, requestFile, out] = process.argv.slice(2);
const s3 = new S3Client({});
const runtime = new SageMakerRuntimeClient({});

const key = `async-input/${randomUUID()}.json`;
await s3.send(
  new PutObjectCommand({
    Bucket: bucket,
    Key: key,
    Body: await readFile(requestFile),
    ContentType: "application/json",
  }),
);
const { OutputLocation, FailureLocation } = await runtime.send(
  new InvokeEndpointAsyncCommand({
    EndpointName: endpointName,
    InputLocation: `s3://${bucket}/${key}`,
    ContentType: "application/json",
    Accept: "audio/wav",
  }),
);

async function read(location) {
  const [, locationBucket, locationKey] = location.match(/^s3:\/\/([^/]+)\/(.+)$/);
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: locationBucket, Key: locationKey }));
    return Buffer.from(await object.Body.transformToByteArray());
  } catch (error) {
    if (error.name === "NoSuchKey") return null;
    throw error;
  }
}

for (let waited = 0; waited < 900; waited += 1) {
  const audio = await read(OutputLocation);
  if (audio) {
    await writeFile(out, audio);
    console.log(`wrote ${out}`);
    process.exit(0);
  }
  const failure = await read(FailureLocation);
  if (failure) {
    console.error(failure.toString());
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
console.error(`no result after 900 s: ${OutputLocation}`);
process.exit(4);
