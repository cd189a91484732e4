/** How the CLI talks to people (tables, plain lines, progress) and scripts (--json), and its exit codes. */
export { ExitCode, formatBytes, formatDestination, printJson, printTable, reportError } from './output.ts';
