/**
 * Audit records for the registry's write and admin calls: each one is run through `audited`,
 * which appends {principal, action, target, outcome, detail} once it ends, successful or not.
 * The record is written before the answer goes out, so a client that saw its call end finds it
 * in the log. A record that cannot be written is logged as an error and does not change the
 * call's outcome: the change it describes has happened (or failed) either way.
 */
import { codeName, ErrorCode, NexusError } from '../../domain/index.ts';
import type { Principal } from '../../auth/principal.ts';
import { principalOf } from '../../rpc/call-principal.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { AuditLog } from '../core/index.ts';

/** What a handler tells the audit record as it learns it: what the call acts on and what happened. */
export interface AuditNote {
  target: string;
  detail: string;
}

/** Runs one call's work and records it; `work` fills in the note. */
export type Audited = <T>(call: object, action: string, work: (note: AuditNote, principal: Principal) => Promise<T>) => Promise<T>;

/** The recorder over `log`; failures to record go to `logger`. */
export function createAuditTrail(log: AuditLog, logger: Logger): Audited {
  return async (call, action, work) => {
    const principal = principalOf(call);
    const note: AuditNote = { target: '', detail: '' };
    let outcome = 'OK';
    try {
      return await work(note, principal);
    } catch (error) {
      const coded = (call as { cancelled?: boolean }).cancelled ? new NexusError(ErrorCode.CANCELLED, 'the client cancelled the call') : NexusError.from(error);
      outcome = codeName(coded.code);
      note.detail = note.detail ? `${note.detail}: ${coded.message}` : coded.message;
      throw error;
    } finally {
      await log.append({ principal: principal.id, action, target: note.target, outcome, detail: note.detail }).catch((error: unknown) => {
        logger.error({ err: error, action, principal: principal.id, target: note.target, outcome }, 'audit record could not be written');
      });
    }
  };
}

/**
 * Who a version or alias move is recorded as made by: the authenticated principal, or, with
 * authentication off (every call anonymous), what the client said.
 */
export function recordedAuthor(principal: Principal, claimed: string): string {
  return principal.kind === 'anonymous' ? claimed : principal.id;
}
