/** The executor's GPU layer: opening the device and building cached compute pipelines. */
export { openGpu, type GpuContext } from './device.ts';
export { pipelineCacheFor, type CachedPipeline } from './pipeline-cache.ts';
