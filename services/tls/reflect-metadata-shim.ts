/**
 * The three Reflect metadata functions tsyringe (a dependency of @peculiar/x509) insists on at
 * import: without them it throws "tsyringe requires a reflect polyfill". @peculiar/x509 is built
 * without decorator metadata, so tsyringe only ever stores its own injection tokens here; a
 * WeakMap per target is all that takes. Import this module before @peculiar/x509 (ES modules
 * evaluate their imports in order). A real polyfill loaded first wins: nothing is replaced.
 */
type MetadataKey = string | symbol;
type MetadataReflect = typeof Reflect & {
  getMetadata?(key: MetadataKey, target: object): unknown;
  getOwnMetadata?(key: MetadataKey, target: object): unknown;
  defineMetadata?(key: MetadataKey, value: unknown, target: object): void;
};

const reflect = Reflect as MetadataReflect;
if (!reflect.getMetadata) {
  const store = new WeakMap<object, Map<MetadataKey, unknown>>();
  const own = (key: MetadataKey, target: object) => store.get(target)?.get(key);
  reflect.getOwnMetadata = own;
  reflect.getMetadata = (key, target) => {
    for (let current: object | null = target; current !== null; current = Object.getPrototypeOf(current)) {
      if (store.get(current)?.has(key)) return own(key, current);
    }
    return undefined;
  };
  reflect.defineMetadata = (key, value, target) => {
    const entries = store.get(target) ?? new Map<MetadataKey, unknown>();
    entries.set(key, value);
    store.set(target, entries);
  };
}
