/**
 * Reading ONNX node attributes with their defaults, and the errors every operator reports:
 * FAILED_PRECONDITION naming the operator and the node.
 */
import type { AttributeProto, HostTensor, NodeProto } from '../../onnx/model.ts';
import { tensorFromProto } from '../../onnx/model.ts';
import { AttributeProto_AttributeType as AttributeType } from '../../protocol/generated/onnx/onnx.ts';
import { failedPrecondition } from '../../domain/errors.ts';

/** FAILED_PRECONDITION "operator 'X' (node 'n') is not supported[ with detail]". */
export function unsupported(node: NodeProto, detail?: string) {
  return failedPrecondition(`operator '${qualifiedOpType(node)}' (node '${node.name}') is not supported${detail ? ` with ${detail}` : ''}`);
}

/** FAILED_PRECONDITION for a model that is not valid ONNX at this node. */
export function invalidNode(node: NodeProto, detail: string) {
  return failedPrecondition(`node '${node.name}' (${qualifiedOpType(node)}) is invalid: ${detail}`);
}

export function qualifiedOpType(node: NodeProto): string {
  return node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType;
}

export function attributeOf(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((attribute) => attribute.name === name);
}

export function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = attributeOf(node, name);
  if (!attribute) return fallback;
  if (attribute.type !== AttributeType.INT) throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected INT)`);
  return Number(attribute.i);
}

export function floatAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = attributeOf(node, name);
  if (!attribute) return fallback;
  if (attribute.type === AttributeType.FLOAT) return attribute.f;
  // Some exporters write integral alpha/beta as INT.
  if (attribute.type === AttributeType.INT) return Number(attribute.i);
  throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected FLOAT)`);
}

export function intsAttribute(node: NodeProto, name: string): number[] | undefined {
  const attribute = attributeOf(node, name);
  if (!attribute) return undefined;
  if (attribute.type !== AttributeType.INTS) throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected INTS)`);
  return attribute.ints.map(Number);
}

export function stringAttribute(node: NodeProto, name: string, fallback: string): string {
  const attribute = attributeOf(node, name);
  if (!attribute) return fallback;
  if (attribute.type !== AttributeType.STRING) throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected STRING)`);
  return new TextDecoder().decode(attribute.s);
}

export function tensorAttribute(node: NodeProto, name: string): HostTensor | undefined {
  const attribute = attributeOf(node, name);
  if (!attribute) return undefined;
  if (attribute.type !== AttributeType.TENSOR || !attribute.t) throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected TENSOR)`);
  return tensorFromProto(attribute.t);
}

/** A 0/1 INT attribute. */
export function booleanAttribute(node: NodeProto, name: string, fallback = false): boolean {
  const value = intAttribute(node, name, Number(fallback));
  if (value !== 0 && value !== 1) throw unsupported(node, `${name}=${value} (expected 0 or 1)`);
  return value === 1;
}

/** A string attribute restricted to `allowed`. */
export function enumAttribute<Value extends string>(node: NodeProto, name: string, allowed: readonly Value[], fallback: Value): Value {
  const value = stringAttribute(node, name, fallback);
  if (!(allowed as readonly string[]).includes(value)) {
    throw unsupported(node, `${name}='${value}' (supported: ${allowed.map((item) => `'${item}'`).join(', ')})`);
  }
  return value as Value;
}
