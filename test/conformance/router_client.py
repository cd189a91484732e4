#!/usr/bin/python3
"""ONNX's conformance cases through a running router, from outside: Python's grpcio and
onnx.numpy_helper, no code of ours but the proto.

Each case named on the command line has been stored as a model of its name in lower case. Its inputs
(test_data_set_0/input_N.pb) go out as raw_input_contents with the datatype numpy reads them
in; the outputs come back raw and are compared with the case's outputs as onnx's own backend
tests compare them (numpy.testing.assert_allclose, rtol 1e-3, here with atol 1e-5 for the GPU's
f32 maths; integers and booleans exact). Prints one JSON object per case on stdout:

    {"case": "test_abs", "outcome": "pass" | "mismatch" | "error", "detail": "..."}

Usage (Debian's python3 with python3-grpcio, python3-grpc-tools and python3-onnx):

    /usr/bin/python3 test/conformance/router_client.py --address 127.0.0.1:8001 \\
        --cases node_modules/.cache/onnx-node-cases/node test_abs test_add ...
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc
import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from oip_client import generate_stubs  # noqa: E402  (the stubs come from our proto, generated at start)

DATATYPES = {
    np.dtype("float32"): "FP32", np.dtype("float64"): "FP64", np.dtype("float16"): "FP16",
    np.dtype("int8"): "INT8", np.dtype("int16"): "INT16", np.dtype("int32"): "INT32", np.dtype("int64"): "INT64",
    np.dtype("uint8"): "UINT8", np.dtype("uint16"): "UINT16", np.dtype("uint32"): "UINT32", np.dtype("uint64"): "UINT64",
    np.dtype("bool"): "BOOL",
}
NUMPY_TYPES = {name: dtype for dtype, name in DATATYPES.items()}


def read_tensors(data_set: Path, prefix: str) -> list[np.ndarray]:
    tensors = []
    index = 0
    while (data_set / f"{prefix}_{index}.pb").exists():
        proto = onnx.TensorProto()
        proto.ParseFromString((data_set / f"{prefix}_{index}.pb").read_bytes())
        tensors.append(numpy_helper.to_array(proto))
        index += 1
    return tensors


def bfloat16_values(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def run_case(stub, pb, cases: Path, name: str) -> dict:
    model = onnx.load(str(cases / name / "model.onnx"))
    initializers = {tensor.name for tensor in model.graph.initializer}
    input_names = [value.name for value in model.graph.input if value.name not in initializers]
    data_set = cases / name / "test_data_set_0"
    inputs = read_tensors(data_set, "input")
    expected = read_tensors(data_set, "output")
    # Model names are lower case: the case test_cast_FLOAT_to_DOUBLE is stored as test_cast_float_to_double.
    request = pb.ModelInferRequest(model_name=name.lower())
    declared = {value.name: value.type.tensor_type.elem_type for value in model.graph.input}
    for input_name, array in zip(input_names, inputs):
        # numpy has no bfloat16: onnx writes BFLOAT16 data as UINT16 bit patterns, sent as BF16.
        bfloat16 = declared.get(input_name) == onnx.TensorProto.BFLOAT16 and array.dtype == np.uint16
        datatype = "BF16" if bfloat16 else DATATYPES.get(array.dtype)
        if datatype is None:
            return {"case": name, "outcome": "error", "detail": f"input {input_name!r} is {array.dtype}, which the client does not send"}
        request.inputs.append(pb.ModelInferRequest.InferInputTensor(name=input_name, datatype=datatype, shape=list(array.shape)))
        request.raw_input_contents.append(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    try:
        response = stub.ModelInfer(request, timeout=60)
    except grpc.RpcError as error:
        return {"case": name, "outcome": "error", "detail": f"{error.code().name}: {error.details()}"}
    outputs = {tensor.name: (tensor, response.raw_output_contents[index]) for index, tensor in enumerate(response.outputs)}
    for output, want in zip(model.graph.output, expected):
        if output.name not in outputs:
            return {"case": name, "outcome": "mismatch", "detail": f"output {output.name!r} missing"}
        tensor, raw = outputs[output.name]
        if tensor.datatype == "BF16" and want.dtype == np.uint16:
            got_bits = np.frombuffer(raw, dtype="<u2").reshape(list(tensor.shape))
            if got_bits.shape != want.shape or not np.allclose(bfloat16_values(got_bits), bfloat16_values(want), rtol=1.6e-2, atol=1e-2, equal_nan=True):
                return {"case": name, "outcome": "mismatch", "detail": f"output {output.name!r} differs"}
            continue
        dtype = NUMPY_TYPES.get(tensor.datatype)
        if dtype is None:
            return {"case": name, "outcome": "mismatch", "detail": f"output {output.name!r} came as {tensor.datatype}"}
        got = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(list(tensor.shape))
        if got.dtype != want.dtype or got.shape != want.shape:
            return {"case": name, "outcome": "mismatch",
                    "detail": f"output {output.name!r} is {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"}
        if want.dtype.kind == "f":
            tolerance = {"rtol": 2e-3, "atol": 1e-3} if want.dtype == np.float16 else {"rtol": 1e-3, "atol": 1e-5}
            close = np.allclose(got, want, equal_nan=True, **tolerance)
        else:
            close = np.array_equal(got, want)
        if not close:
            return {"case": name, "outcome": "mismatch", "detail": f"output {output.name!r} differs"}
    return {"case": name, "outcome": "pass", "detail": ""}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--cases", required=True, type=Path)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    stubs = generate_stubs()
    channel = grpc.insecure_channel(args.address, options=[("grpc.max_receive_message_length", 64 << 20)])
    stub = stubs.services.GRPCInferenceServiceStub(channel)
    for name in args.names:
        print(json.dumps(run_case(stub, stubs.messages, args.cases, name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
