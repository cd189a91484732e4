/**
 * Who may call what. Three roles, each including the one before it: `infer` reads and runs
 * models, `write` changes what is stored and served, `admin` does what cannot be undone or
 * manages access. Services identify themselves by certificate (see services/tls/), not by role.
 */
export const ROLES = ['infer', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The services that hold a certificate of their own from the deployment's CA. */
export const SERVICE_IDENTITIES = ['router', 'executor', 'registry'] as const;
export type ServiceIdentity = (typeof SERVICE_IDENTITIES)[number];

const rank: Record<Role, number> = { infer: 0, write: 1, admin: 2 };

/** True when a principal holding `held` may do what needs `needed`. */
export const roleAllows = (held: Role, needed: Role): boolean => rank[held] >= rank[needed];

export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text);
}

export function isServiceIdentity(text: string): text is ServiceIdentity {
  return (SERVICE_IDENTITIES as readonly string[]).includes(text);
}
