/**
 * One writer for the concurrency test, as its own process:
 *   node test/registry/writer-process.ts <registry host:port> <model> <count> <seed>
 * Stores `count` distinct tiny models as versions of <model> and prints the numbers it got, as JSON.
 */
import { credentials } from '@grpc/grpc-js';
import { RegistryClient, UploadHeader, type UploadVersionResponse } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { tinyModel } from './fixtures.ts';

const [address, modelName, countText, seedText] = process.argv.slice(2);
const client = new RegistryClient(address, credentials.createInsecure());
const numbers: number[] = [];
for (let index = 0; index < Number(countText); index++) {
  const bytes = tinyModel(Number(seedText) * 1000 + index);
  const response = await new Promise<UploadVersionResponse>((resolve, reject) => {
    const stream = client.uploadVersion((error, reply) => (error ? reject(error) : resolve(reply)));
    stream.write({ header: UploadHeader.fromPartial({ modelName, format: 'onnx', sizeBytes: bytes.byteLength, creator: `writer-${seedText}` }) });
    stream.write({ chunk: bytes });
    stream.end();
  });
  numbers.push(response.version!.version);
}
client.close();
console.log(JSON.stringify(numbers));
