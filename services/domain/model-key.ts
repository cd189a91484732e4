/**
 * The typed identity of one model version inside a process: "name:version". Built only here, so
 * a key is never spelled by hand and a plain string cannot be passed where a key is expected.
 */
export type ModelKey = string & { readonly __brand: 'ModelKey' };

/** The key of version `version` of model `modelName`. */
export function modelKey(modelName: string, version: number): ModelKey {
  return `${modelName}:${version}` as ModelKey;
}

/** The key of anything that names a model version (a version record, a batch, a hello entry). */
export function modelKeyOf(ref: { modelName: string; version: number }): ModelKey {
  return modelKey(ref.modelName, ref.version);
}
