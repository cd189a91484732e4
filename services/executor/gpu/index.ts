/** The executor's GPU layer: opening the device and building cached compute pipelines. */
export { selectAdapters } from './adapter-selection.ts';
export { expectGpuWork, listAdapters, openGpu, type GpuContext, type OpenGpuOptions } from './device.ts';
export { pipelineCacheFor, type CachedPipeline } from './pipeline-cache.ts';
