#!/usr/bin/python3
"""A Python client streaming text generation over ModelStreamInfer, as tritonclient does with
Triton's vLLM backend: inputs text_input (BYTES), stream (BOOL) and sampling_parameters (BYTES,
a JSON string) in raw_input_contents (a BYTES element is a 4-byte little-endian length and its
bytes; a BOOL one byte), text_output read from raw_output_contents, responses read until the one
whose parameter triton_final_response is true.

It generates its stubs from proto/inference/grpc_service.proto at start-up and prints one JSON
object on stdout:

    {"chunks": ["...", ...], "final_parameters": {"nexus_finish_reason": "length", ...},
     "model_version": "1", "errors": []}

Usage (Debian's python3, which has grpcio and grpcio-tools):

    /usr/bin/python3 test/python/generation_stream_client.py --address 127.0.0.1:8001 \\
        --model tiny-gpt --prompt "Say hello" --sampling '{"temperature": 0, "max_tokens": 8}'
"""
from __future__ import annotations

import argparse
import importlib
import json
import queue
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import grpc
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
SERVICE_PROTO = "inference/grpc_service.proto"


def generate_stubs() -> tuple[Any, Any]:
    well_known_protos = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="oip-stubs-") as out_dir:
        status = protoc.main([
            "grpc_tools.protoc", f"--proto_path={PROTO_ROOT}", f"--proto_path={well_known_protos}",
            f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", str(PROTO_ROOT / SERVICE_PROTO),
        ])
        if status != 0:
            sys.exit(4)
        sys.path.insert(0, out_dir)
        try:
            return importlib.import_module("inference.grpc_service_pb2"), importlib.import_module("inference.grpc_service_pb2_grpc")
        finally:
            sys.path.remove(out_dir)


def serialize_bytes_element(data: bytes) -> bytes:
    """tritonclient's serialize_byte_tensor for one element."""
    return struct.pack("<I", len(data)) + data


def deserialize_bytes_element(raw: bytes) -> bytes:
    (length,) = struct.unpack_from("<I", raw, 0)
    return raw[4:4 + length]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Stream a generation over ModelStreamInfer and print JSON.")
    parser.add_argument("--address", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--sampling", default="{}", help="sampling_parameters as a JSON string")
    parser.add_argument("--exclude-input", action="store_true", help="send exclude_input_in_output true")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    messages, services = generate_stubs()

    request = messages.ModelInferRequest(model_name=args.model, id="py-1")
    raw = []
    for name, datatype, data in [
        ("text_input", "BYTES", serialize_bytes_element(args.prompt.encode("utf-8"))),
        ("stream", "BOOL", b"\x01"),
        ("sampling_parameters", "BYTES", serialize_bytes_element(args.sampling.encode("utf-8"))),
        ("exclude_input_in_output", "BOOL", b"\x01" if args.exclude_input else b"\x00"),
    ]:
        request.inputs.append(messages.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=[1]))
        raw.append(data)
    request.raw_input_contents.extend(raw)
    request.outputs.append(messages.ModelInferRequest.InferRequestedOutputTensor(name="text_output"))

    # The request stream stays open until the final response, as tritonclient's start_stream does.
    outgoing: queue.Queue[Any] = queue.Queue()
    outgoing.put(request)

    def requests() -> Iterator[Any]:
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

    result: dict[str, Any] = {"chunks": [], "final_parameters": {}, "model_version": "", "errors": []}
    with grpc.insecure_channel(args.address) as channel:
        stub = services.GRPCInferenceServiceStub(channel)
        try:
            for message in stub.ModelStreamInfer(requests(), timeout=args.timeout):
                if message.error_message:
                    result["errors"].append(message.error_message)
                    break
                response = message.infer_response
                index = [output.name for output in response.outputs].index("text_output")
                result["chunks"].append(deserialize_bytes_element(response.raw_output_contents[index]).decode("utf-8"))
                result["model_version"] = response.model_version
                if response.parameters["triton_final_response"].bool_param:
                    for key, value in response.parameters.items():
                        result["final_parameters"][key] = getattr(value, value.WhichOneof("parameter_choice"))
                    break
        except grpc.RpcError as error:
            result["errors"].append(f"{error.code().name}: {error.details()}")
        finally:
            outgoing.put(None)
    print(json.dumps(result))
    return 0 if not result["errors"] else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
