/**
 * The router's HTTP port: the Open Inference Protocol's REST API (with the binary tensor and
 * generate extensions), the OpenAI-compatible API and the dashboard, on the same request path,
 * generation path, authentication and rate limits as the gRPC port; and the live traffic the
 * dashboard charts.
 */
export { startHttpServer, type RunningHttpServer } from './http-server.ts';
export { grpcDashboardRegistry } from './dashboard-registry.ts';
export { TrafficMonitor } from './traffic-monitor.ts';
