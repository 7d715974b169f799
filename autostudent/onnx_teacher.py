"""A teacher from an ONNX file (one trained in another framework), run by onnxruntime.

``OnnxTeacher`` is a ``torch.nn.Module`` whose forward hands the batch to an onnxruntime CPU
session, so the rest of autostudent treats it as any teacher: its outputs are computed once
and cached, and trials never run it. What torch cannot see inside it, it says itself: its
parameters (the graph's initializers), its FLOPs (its convolutions and matrix products, counted
as ``torch.utils.flop_counter`` counts a torch network's) and its ONNX bytes (what the
``onnxruntime`` latency runtime times). The input of its last ``Gemm``/``MatMul`` is made a
second output: the penultimate features relational KD needs, from the same run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from autostudent.errors import UserError

LINEAR_OPS = ("Gemm", "MatMul")


def is_onnx(path) -> bool:
    """Whether the file parses as an ONNX model with a graph (what ``onnx.checker`` would read)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not protobuf, or not a ModelProto
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def _params(graph) -> int:
    """Its parameters as torch counts them: the float weights each node reads, BatchNorm's
    running statistics not. The exporter stores equal tensors once and reads them through an
    Identity node under each name (two zero biases, say): each name counts, as in torch."""
    from onnx import TensorProto

    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)
    sizes = {i.name: math.prod(i.dims) for i in graph.initializer if i.data_type in floats}
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    used = {
        name
        for n in graph.node
        if n.op_type != "Identity"
        for k, name in enumerate(n.input)
        if alias.get(name, name) in sizes and not (n.op_type == "BatchNormalization" and k >= 3)
    }
    return sum(sizes[alias.get(name, name)] for name in used)


class OnnxTeacher(nn.Module):
    def __init__(self, model_bytes: bytes, threads: int | None = None):
        super().__init__()
        import onnx

        from autostudent import onnx_export

        model = onnx.load_from_string(model_bytes)
        graph = model.graph
        weights = {init.name for init in graph.initializer}
        inputs = [i for i in graph.input if i.name not in weights]  # old opsets list weights too
        if len(inputs) != 1 or len(graph.output) < 1:
            raise UserError(
                f"teacher.path: an ONNX teacher takes one input and gives the logits first "
                f"(this one has {len(inputs)} inputs, {len(graph.output)} outputs)"
            )
        self.input_name = inputs[0].name
        dims = inputs[0].type.tensor_type.shape.dim
        self.input_shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        self.fixed_batch = self.input_shape[0] if self.input_shape else None
        # a channels-last input (TensorFlow's layout, kept by tf2onnx): (N, H, W, 1 or 3) with
        # a known H that is not a channel count; batches arrive (N, C, H, W) and are permuted
        shape = self.input_shape
        self.channels_last = len(shape) == 4 and shape[3] in (1, 3) and shape[1] not in (1, 3, None)
        self.onnx_params = _params(graph)
        self.onnx_model = model_bytes  # as the user gave it: the latency runtime times this
        linears = [n for n in graph.node if n.op_type in LINEAR_OPS]
        self.feature_name = linears[-1].input[0] if linears else None
        if self.feature_name is not None and self.feature_name not in {
            o.name for o in graph.output
        }:
            graph.output.append(onnx.helper.make_empty_tensor_value_info(self.feature_name))
        self.outputs = [graph.output[0].name] + ([self.feature_name] if self.feature_name else [])
        self.session = onnx_export.session(
            model.SerializeToString(), threads or torch.get_num_threads()
        )
        self._model = model

    @property
    def has_features(self) -> bool:
        return self.feature_name is not None

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and penultimate features (or None) of a batch, on the batch's device."""
        x_in = x.permute(0, 2, 3, 1) if self.channels_last else x
        batch = np.ascontiguousarray(x_in.detach().float().cpu().numpy())
        n = len(batch)
        step = self.fixed_batch or n
        outs: list[list[np.ndarray]] = []
        for start in range(0, n, step):
            chunk = batch[start : start + step]
            if len(chunk) < step:  # a model exported for a fixed batch: pad the last chunk
                pad = np.zeros((step - len(chunk), *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, pad])
            outs.append(self.session.run(self.outputs, {self.input_name: chunk}))
        joined = [np.concatenate([o[i] for o in outs])[:n] for i in range(len(self.outputs))]
        logits = torch.from_numpy(joined[0]).to(x.device)
        feats = torch.from_numpy(joined[1]).flatten(1).to(x.device) if len(joined) > 1 else None
        return logits, feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    def count_flops(self, input_shape: tuple[int, ...]) -> int:
        """FLOPs of one example's forward pass: 2 per multiply-add of every Conv, Gemm and
        MatMul (what torch's flop counter counts), from the graph's inferred shapes."""
        import onnx

        model = onnx.ModelProto()
        model.CopyFrom(self._model)
        dims = model.graph.input[[i.name for i in model.graph.input].index(self.input_name)]
        shape = dims.type.tensor_type.shape
        for d, size in zip(shape.dim, (1, *input_shape), strict=False):
            d.ClearField("dim_param")
            d.dim_value = size
        inferred = onnx.shape_inference.infer_shapes(model)
        shapes = {
            v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)
        }
        shapes.update({init.name: list(init.dims) for init in model.graph.initializer})
        total = 0
        for node in inferred.graph.node:
            if node.op_type == "Conv":
                weight, out = shapes.get(node.input[1]), shapes.get(node.output[0])
                if weight and out:  # (Cout, Cin/groups, kH, kW) and (1, Cout, H, W)
                    total += 2 * math.prod(out) * math.prod(weight[1:])
            elif node.op_type in LINEAR_OPS:
                a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
                trans_a = any(at.name == "transA" and at.i for at in node.attribute)
                if a and out:  # (M, K) x (K, N): K is A's last dimension, or its first if transA
                    total += 2 * math.prod(out) * (a[0] if trans_a else a[-1])
        return total
