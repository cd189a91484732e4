/**
 * The one request path: every inference request, whether it came by ModelInfer, ModelStreamInfer
 * or the task API, is routed, admitted, answered, counted and reported in one place.
 */
export { createRequestPath, type RequestPath, type RequestReporter } from './request-path.ts';
export { isFinished, TaskStore } from './task-store.ts';
