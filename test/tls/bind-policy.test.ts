/**
 * The bind policy: a port other machines can reach is served only with TLS and authentication,
 * unless --insecure; loopback is always fine. Each refusal says why and what to pass.
 */
import { describe, expect, it } from 'vitest';
import { decideBind, isLoopbackAddress, type BindFacts } from '../../services/tls/bind-policy.ts';

const facts = (overrides: Partial<BindFacts>): BindFacts => ({
  service: 'registry', address: '0.0.0.0:8011', tls: false, authentication: true, insecure: false, ...overrides,
});

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1:8011', '127.9.8.7:1', 'localhost:8001', '[::1]:8001', '[0:0:0:0:0:0:0:1]:0', 'unix:/tmp/nexus.sock', 'ipv4:127.0.0.1:80'])(
    '%s is loopback', (address) => expect(isLoopbackAddress(address)).toBe(true));

  it.each(['0.0.0.0:8011', '[::]:8001', ':8001', '10.0.0.5:8021', 'registry:8011', '192.168.1.2:0', '[fe80::1]:80', 'localhost.example.com:1'])(
    '%s is not loopback', (address) => expect(isLoopbackAddress(address)).toBe(false));
});

describe('decideBind', () => {
  it('allows any loopback address without TLS or authentication', () => {
    expect(decideBind(facts({ address: '127.0.0.1:8011', tls: false, authentication: false }))).toEqual({ allowed: true });
  });

  it('allows a reachable address with TLS and authentication, without a warning', () => {
    expect(decideBind(facts({ tls: true, authentication: true }))).toEqual({ allowed: true });
  });

  it('refuses a reachable address without TLS, saying why and what to pass', () => {
    const decision = decideBind(facts({ tls: false }));
    expect(decision).toEqual({
      allowed: false,
      reason: 'registry will not listen on 0.0.0.0:8011 without TLS: it is reachable from other machines and its calls, credentials '
        + 'included, would cross the network in plaintext. Pass --tls-dir DIR, listen on a loopback address such as 127.0.0.1, '
        + 'or pass --insecure (NEXUS_INSECURE=1) to accept the risk',
    });
  });

  it('refuses a reachable address with TLS but no authentication', () => {
    const decision = decideBind(facts({ tls: true, authentication: false }));
    expect(decision.allowed).toBe(false);
    expect(!decision.allowed && decision.reason).toMatch(/^registry will not listen on 0\.0\.0\.0:8011 without authentication: .*could call it without credentials\. Turn authentication on, /);
  });

  it('names each missing piece once, with the remedies the service gives', () => {
    const decision = decideBind(facts({
      service: 'executor', address: '[::]:8021', tls: false, authentication: false, remedies: { tls: 'pass --tls-dir DIR', authentication: 'pass --tls-dir DIR' },
    }));
    expect(!decision.allowed && decision.reason).toMatch(/^executor will not listen on \[::\]:8021 without TLS or authentication: .*\. Pass --tls-dir DIR, listen/);
    const router = decideBind(facts({ service: 'router', tls: false, remedies: { tls: 'pass --tls-cert FILE and --tls-key FILE' } }));
    expect(!router.allowed && router.reason).toContain('Pass --tls-cert FILE and --tls-key FILE, listen on a loopback address');
  });

  it('allows what it would refuse when --insecure is given, with a warning that says what is exposed', () => {
    expect(decideBind(facts({ tls: false, authentication: false, insecure: true }))).toEqual({
      allowed: true,
      warning: 'registry listens on 0.0.0.0:8011 without TLS or authentication (--insecure): its calls, credentials included, would cross the network in plaintext',
    });
  });
});
