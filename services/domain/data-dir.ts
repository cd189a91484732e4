/** Where local services and the CLI keep their data unless a flag says otherwise. */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** NEXUS_HOME, or ~/.nexus: the local store and the executors' artifact cache live here. */
export function defaultDataDir(): string {
  return process.env.NEXUS_HOME ?? join(homedir(), '.nexus');
}
