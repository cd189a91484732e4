/** How `nexus up` keeps its services running: restarts with backoff, and one stop for all. */
export { restartDelayMs, Supervisor } from './supervisor.ts';
