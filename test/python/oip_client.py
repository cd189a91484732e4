#!/usr/bin/python3
"""A Python client of the Open Inference Protocol (KServe v2 gRPC), for cross-language tests.

It generates its stubs from proto/inference/grpc_service.proto at start-up, so it checks the
contract as written, not a copy of it. It calls ServerLive, ServerReady, ModelReady, ModelMetadata
and ModelInfer, then prints one JSON object on stdout:

    {"live": true, "ready": true, "model_ready": true,
     "metadata": {"name": ..., "versions": [...], "platform": ...,
                  "inputs": [{"name": ..., "datatype": ..., "shape": [...]}], "outputs": [...]},
     "outputs": [{"name": ..., "datatype": ..., "shape": [...], "values": [...]}]}

On a gRPC error it prints {"error": {"code": "UNAVAILABLE", "details": "..."}} and exits 3.

Usage (Debian's python3, which has grpcio and grpcio-tools):

    /usr/bin/python3 test/python/oip_client.py --address 127.0.0.1:8001 --model iris \\
        --input-name features --shape 2,4 --values 5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3 [--raw]
"""
from __future__ import annotations

import argparse
import importlib
import json
import struct
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, NoReturn

import grpc
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
SERVICE_PROTO = "inference/grpc_service.proto"

EXIT_RPC_ERROR = 3
EXIT_STUB_GENERATION = 4

# struct format characters for decoding raw_output_contents (little-endian, row-major).
RAW_FORMATS: dict[str, str] = {
    "FP32": "f", "FP64": "d", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
    "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "BOOL": "?",
}
# The InferTensorContents field that carries each datatype.
CONTENTS_FIELDS: dict[str, str] = {
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BOOL": "bool_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
}


class Stubs(NamedTuple):
    messages: ModuleType  # inference.grpc_service_pb2
    services: ModuleType  # inference.grpc_service_pb2_grpc


def generate_stubs() -> Stubs:
    """Compiles the service proto into a temporary directory and imports the generated modules."""
    well_known_protos = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="oip-stubs-") as out_dir:
        status = protoc.main([
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={well_known_protos}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(PROTO_ROOT / SERVICE_PROTO),
        ])
        if status != 0:
            print(f"protoc failed with status {status} compiling {PROTO_ROOT / SERVICE_PROTO}", file=sys.stderr)
            sys.exit(EXIT_STUB_GENERATION)
        # The generated *_pb2_grpc module imports `inference.grpc_service_pb2`, so the output
        # directory must be importable while both modules load; once loaded, they no longer need it.
        sys.path.insert(0, out_dir)
        try:
            messages = importlib.import_module("inference.grpc_service_pb2")
            services = importlib.import_module("inference.grpc_service_pb2_grpc")
        finally:
            sys.path.remove(out_dir)
    return Stubs(messages, services)


def parse_numbers(text: str, kind: type[int] | type[float], flag: str) -> list[Any]:
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{flag} must be comma-separated {kind.__name__}s, got {text!r}: {error}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Call an Open Inference Protocol gRPC server once and print JSON.")
    parser.add_argument("--address", required=True, help="HOST:PORT of the gRPC server")
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--model-version", default="", help="model version (default: empty, the latest)")
    parser.add_argument("--input-name", required=True, help="name of the model's single FP32 input")
    parser.add_argument("--shape", required=True, type=lambda text: parse_numbers(text, int, "--shape"),
                        help="input shape, e.g. 2,4")
    parser.add_argument("--values", required=True, type=lambda text: parse_numbers(text, float, "--values"),
                        help="input values, row-major, e.g. 5.1,3.5,1.4,0.2")
    parser.add_argument("--raw", action="store_true",
                        help="send the input as little-endian float32 in raw_input_contents instead of contents.fp32_contents")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline per call in seconds (default 10)")
    args = parser.parse_args(argv)
    element_count = 1
    for dim in args.shape:
        element_count *= dim
    if element_count != len(args.values):
        parser.error(f"--shape {','.join(map(str, args.shape))} holds {element_count} values, "
                     f"but --values has {len(args.values)}")
    return args


def tensor_metadata(tensors: Any) -> list[dict[str, Any]]:
    return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in tensors]


def output_values(response: Any, index: int) -> list[Any]:
    """An output's values from raw_output_contents when the server filled it, else from its contents."""
    tensor = response.outputs[index]
    if response.raw_output_contents:
        raw = response.raw_output_contents[index]
        code = RAW_FORMATS.get(tensor.datatype)
        if code is None:
            raise ValueError(f"cannot decode raw output {tensor.name!r} of datatype {tensor.datatype}")
        return list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))
    field = CONTENTS_FIELDS.get(tensor.datatype)
    if field is None:
        raise ValueError(f"cannot read contents of output {tensor.name!r} with datatype {tensor.datatype}")
    return list(getattr(tensor.contents, field))


def infer_request(pb: ModuleType, args: argparse.Namespace) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(name=args.input_name, datatype="FP32", shape=args.shape)
    request = pb.ModelInferRequest(model_name=args.model, model_version=args.model_version, inputs=[tensor])
    if args.raw:
        request.raw_input_contents.append(struct.pack(f"<{len(args.values)}f", *args.values))
    else:
        request.inputs[0].contents.fp32_contents.extend(args.values)
    return request


def run(stubs: Stubs, args: argparse.Namespace) -> dict[str, Any]:
    pb = stubs.messages
    with grpc.insecure_channel(args.address) as channel:
        client = stubs.services.GRPCInferenceServiceStub(channel)
        timeout = args.timeout
        live = client.ServerLive(pb.ServerLiveRequest(), timeout=timeout).live
        ready = client.ServerReady(pb.ServerReadyRequest(), timeout=timeout).ready
        model_ready = client.ModelReady(
            pb.ModelReadyRequest(name=args.model, version=args.model_version), timeout=timeout).ready
        metadata = client.ModelMetadata(
            pb.ModelMetadataRequest(name=args.model, version=args.model_version), timeout=timeout)
        response = client.ModelInfer(infer_request(pb, args), timeout=timeout)
    return {
        "live": live,
        "ready": ready,
        "model_ready": model_ready,
        "metadata": {
            "name": metadata.name,
            "versions": list(metadata.versions),
            "platform": metadata.platform,
            "inputs": tensor_metadata(metadata.inputs),
            "outputs": tensor_metadata(metadata.outputs),
        },
        "outputs": [
            {"name": t.name, "datatype": t.datatype, "shape": list(t.shape), "values": output_values(response, i)}
            for i, t in enumerate(response.outputs)
        ],
    }


def fail_with_rpc_error(error: grpc.RpcError) -> NoReturn:
    # Every RpcError raised by a unary call is also a grpc.Call, which carries the status.
    call: Any = error
    print(json.dumps({"error": {"code": call.code().name, "details": call.details() or ""}}))
    sys.exit(EXIT_RPC_ERROR)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stubs = generate_stubs()
    try:
        result = run(stubs, args)
    except grpc.RpcError as error:
        fail_with_rpc_error(error)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
