/**
 * Encryption and service identity: the deployment's CA and each service's certificate (files in
 * the TLS directory, created by `nexus up` or brought by the operator), grpc-js credentials made
 * of them, the identity a verified peer certificate names, and the bind policy.
 */
export { publicServerCredentials } from './credentials.ts';
export { ensureServiceMaterial } from './material.ts';
export { peerServiceIdentity } from './peer.ts';
export { enforceBindPolicy, loadServiceTls, tlsDirFrom } from './service-tls.ts';
