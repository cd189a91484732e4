/** Who may call what: roles, certificate-only methods, open methods and model globs. */
import { describe, expect, it } from 'vitest';
import { authorize, authorizeModel, type MethodAccess } from '../../services/auth/access.ts';
import { ANONYMOUS, UNLIMITED, type Principal } from '../../services/auth/principal.ts';
import { ErrorCode } from '../../services/domain/index.ts';

const key = (role: 'infer' | 'write' | 'admin', models: string[] = []): Principal =>
  ({ kind: 'key', id: 'key:0123456789ab', role, models, limits: UNLIMITED });
const router: Principal = { kind: 'service', id: 'service:router', service: 'router' };
const executor: Principal = { kind: 'service', id: 'service:executor', service: 'executor' };

const refusal = (run: () => void) => {
  try {
    run();
  } catch (error) {
    return { code: (error as { code: number }).code, message: (error as Error).message };
  }
  return undefined;
};

describe('authorize', () => {
  const write: MethodAccess = { role: 'write', services: ['router'] };

  it('lets a role do what it or a lesser role needs', () => {
    expect(refusal(() => authorize(key('write'), write, 'UploadVersion'))).toBeUndefined();
    expect(refusal(() => authorize(key('admin'), write, 'UploadVersion'))).toBeUndefined();
  });

  it("refuses a lesser role, naming the method and the role", () => {
    expect(refusal(() => authorize(key('infer'), write, 'UploadVersion')))
      .toEqual({ code: ErrorCode.PERMISSION_DENIED, message: "UploadVersion needs the 'write' role" });
    expect(refusal(() => authorize(key('write'), { role: 'admin' }, 'RevokeKey')))
      .toEqual({ code: ErrorCode.PERMISSION_DENIED, message: "RevokeKey needs the 'admin' role" });
  });

  it('lets the listed services in by certificate, and no other', () => {
    expect(refusal(() => authorize(router, write, 'UploadVersion'))).toBeUndefined();
    expect(refusal(() => authorize(executor, write, 'UploadVersion'))?.message).toMatch(/^UploadVersion needs the 'write' role; the 'executor' service/);
  });

  it('keeps certificate-only methods from every key, admin included', () => {
    const connect: MethodAccess = { servicesOnly: ['router'] };
    expect(refusal(() => authorize(router, connect, 'Connect'))).toBeUndefined();
    expect(refusal(() => authorize(key('admin'), connect, 'Connect'))).toEqual({
      code: ErrorCode.PERMISSION_DENIED, message: "Connect may be called only by the 'router' service, by its certificate",
    });
    expect(refusal(() => authorize(executor, connect, 'Connect'))?.code).toBe(ErrorCode.PERMISSION_DENIED);
  });

  it('lets anyone call an open method, and an anonymous caller call anything', () => {
    expect(refusal(() => authorize(key('infer'), { open: true }, 'ServerLive'))).toBeUndefined();
    expect(refusal(() => authorize(ANONYMOUS, { role: 'admin' }, 'GarbageCollect', 'iris'))).toBeUndefined();
    expect(refusal(() => authorize(ANONYMOUS, { servicesOnly: ['router'] }, 'Connect'))).toBeUndefined();
  });

  it("checks the request's model against the credential's globs after its role", () => {
    const infer: MethodAccess = { role: 'infer' };
    expect(refusal(() => authorize(key('infer', ['iris-*']), infer, 'ModelInfer', 'iris-v2'))).toBeUndefined();
    expect(refusal(() => authorize(key('infer', ['iris-*']), infer, 'ModelInfer', 'resnet'))).toEqual({
      code: ErrorCode.PERMISSION_DENIED, message: "this credential may not use model 'resnet'",
    });
    // The role is the first refusal a caller hears.
    expect(refusal(() => authorize(key('infer', ['iris-*']), write, 'UploadVersion', 'resnet'))?.message).toBe("UploadVersion needs the 'write' role");
  });
});

describe('authorizeModel', () => {
  it.each<[string[], string, boolean]>([
    [[], 'anything', true],
    [['iris'], 'iris', true],
    [['iris'], 'iris2', false],
    [['iris-*'], 'iris-a.b', true],
    [['iris-*', 'bert'], 'bert', true],
    [['{a,b}-model'], 'b-model', true],
    [['{a,b}-model'], 'c-model', false],
    [['model-?'], 'model-1', true],
    [['model-?'], 'model-12', false],
    [['*'], '.hidden', true],
  ])('globs %j and model %s: allowed %s', (models, name, allowed) => {
    expect(refusal(() => authorizeModel(key('infer', models), name)) === undefined).toBe(allowed);
  });

  it('lets services, anonymous callers and an empty name through', () => {
    expect(refusal(() => authorizeModel(router, 'x'))).toBeUndefined();
    expect(refusal(() => authorizeModel(ANONYMOUS, 'x'))).toBeUndefined();
    expect(refusal(() => authorizeModel(key('infer', ['iris']), ''))).toBeUndefined();
  });

  it('compiles one principal\'s globs once and keeps answering the same', () => {
    const principal = key('infer', ['a*']);
    for (let index = 0; index < 3; index++) {
      expect(refusal(() => authorizeModel(principal, 'ab'))).toBeUndefined();
      expect(refusal(() => authorizeModel(principal, 'ba'))?.code).toBe(ErrorCode.PERMISSION_DENIED);
    }
  });
});
