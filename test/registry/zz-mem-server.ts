import { readFileSync } from 'node:fs';
import { startRegistry } from '../../services/registry/server.ts';
const r = await startRegistry({ dataDir: process.argv[2] });
console.log(JSON.stringify({ address: r.address }));
const mb = (n: number) => (n / 1e6).toFixed(0);
const hwm = () => /VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1];
setInterval(() => { const m = process.memoryUsage(); console.error(`rss ${mb(m.rss)} hwm ${(Number(hwm())/1000).toFixed(0)} heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} ext ${mb(m.external)} ab ${mb(m.arrayBuffers)}`); }, 500).unref();
