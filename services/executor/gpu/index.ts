/** The executor's GPU layer: opening the device and building cached compute pipelines. */
export { openGpu, type GpuContext, type OpenGpuOptions } from './device.ts';
export { PipelineCache, pipelineCacheFor, pipelineKey, shaderSource, SHADER_ROOT, type CachedPipeline } from './pipeline-cache.ts';
