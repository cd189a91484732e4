/**
 * The registry's input rules, pure and in one place: user-chosen names, digests, tags and paths
 * (so nothing escapes the store's directory or a client's target directory), upload headers,
 * directory manifests, safetensors headers, alias moves, and what a new API key may ask for.
 * Used by the registry, and by any client that checks what it will write (nexus pull).
 */
export { checkAliasName, checkManifestPath, checkModelName, checkSha256 } from './names.ts';
export { checkManifest, checkUploadHeader, isDirectoryFormat } from './upload-header.ts';
export { checkSafetensorsPrefix, notSafetensors, safetensorsPrefixBytes } from './safetensors.ts';
export { checkDestination, checkMove, type AliasDestination, type MoveRequest } from './alias-move.ts';
export {
  budgetExceeded, checkArtifactSize, checkCount, DEFAULT_LIMITS, LARGEST_EXACT_COUNT, parseLimit, type RegistryLimits,
} from './limits.ts';
export { checkKeyId, checkKeyRequest, NO_LIMITS, type CheckedKeyRequest } from './key-request.ts';
