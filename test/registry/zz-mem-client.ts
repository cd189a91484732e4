import { credentials } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { RegistryClient, UploadHeader } from '/work/main/services/protocol/generated/nexus/registry/v1/registry.ts';
import { hugeOnnxModel } from '/work/main/test/registry/fixtures.ts';
const client = new RegistryClient(process.argv[2], credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
const model = hugeOnnxModel(Number(process.argv[3] ?? 1024) * 1024 * 1024);
const t0 = performance.now();
const res: any = await new Promise((resolve, reject) => {
  const stream = client.uploadVersion((e, r) => e ? reject(e) : resolve(r));
  (async () => {
    stream.write({ header: UploadHeader.fromPartial({ modelName: 'huge', format: 'onnx', sizeBytes: model.sizeBytes }) });
    for await (const chunk of model.chunks()) if (!stream.write({ chunk })) await new Promise((r) => stream.once('drain', r));
    stream.end();
  })();
});
console.log('upload s', ((performance.now() - t0) / 1000).toFixed(1));
const t1 = performance.now();
let n = 0;
for await (const m of client.downloadArtifact({ sha256: res.version.sha256, offset: 0 }) as any) n += m.chunk.byteLength;
console.log('download s', ((performance.now() - t1) / 1000).toFixed(1), n);
client.close();
