"""The tagger as one ONNX graph that takes what the WD taggers take, written node by node from
the Keras weights with `onnx.helper`.

Input `input`: float32 [N, 448, 448, 3], channels last, BGR, 0-255, the image already padded to
a white square and brought to 448 by the tool. Inside: the resize to the model's own input size
as one fixed matrix product per axis (the matrix of the Pillow filter the dataset was built
with, so that the resize is exact, which ONNX's Resize, lacking area and box filters, is not),
the model's preprocessing, the network in inference form (BatchNormalization as its moving
statistics, Dropout gone), the sigmoid, and a Gather that puts the probabilities in the order of
the CSV's rows. Output `output`: float32 [N, rows]; second output `embedding`: the tag logits
before the sigmoid, float32 [N, tags] in the vocabulary's order, the vector --vec reads from the
Keras model by default (--layer logits, named in the metadata). The probabilities stay first:
kohya, ComfyUI-WD14-Tagger and taggui read outputs[0] alone, and imgutils reads outputs[1] as
the embedding, as deepghs' wd14_tagger_with_embeddings carry it.

Converting through tf2onnx would hold the 134M-weight last layer several times over and was
killed at 24 GiB for 4096 tags; written directly, each weight is copied once into its tensor.

    graph = tagger_graph(model, "vgg", "area", columns)   # columns: model output per CSV row
    onnx.save(graph, "model.onnx")
"""

from __future__ import annotations

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from alti2v.data.images import RESIZE_FILTERS
from alti2v.model.wd_folder import EMBEDDING_LAYER_KEY

WD_INPUT_SIZE = 448
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)  # keras' "caffe" preprocessing, as --build's
OPSET = 17
INPUT, OUTPUT = "input", "output"  # the names kohya, ComfyUI and imgutils look up
EMBEDDING = "embedding"  # the name deepghs gives its exports' embedding output
EMBEDDING_LAYER = "logits"  # the --layer the embedding output is (alti2v.vectors.layers.LAYERS)


def resize_matrix(source: int, target: int, resize: str) -> np.ndarray:
    """(target, source) float32: row i holds the weight of each source pixel in target pixel i
    under Pillow's `resize` filter. Pillow resizes each axis alone, so resizing the identity
    along one axis (in float, mode F) yields exactly the weights it uses."""
    identity = Image.fromarray(np.eye(source, dtype=np.float32), mode="F")
    return np.asarray(identity.resize((target, source), RESIZE_FILTERS[resize])).T.copy()


class _Builder:
    """Nodes and initializers of one graph, each node's output named after its position."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, array: np.ndarray, name: str) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        name = f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attributes))
        return name


def _weights(layer: keras.layers.Layer) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(weight), np.float32) for weight in layer.weights]


def tagger_graph(
    model: keras.Model, preprocess: str, resize: str, columns: list[int | None]
) -> onnx.ModelProto:
    """`model` (a build_model network) as the WD-layout graph; output row j is the model's
    output `columns[j]`, or 0 where it is None (a rating the vocabulary lacks)."""
    size = model.input_shape[1]
    graph = _Builder()
    # NCHW from here to the head: ONNX's Conv and MaxPool take channels first.
    x = graph.op("Transpose", INPUT, perm=[0, 3, 1, 2])
    matrix = resize_matrix(WD_INPUT_SIZE, size, resize)
    x = graph.op("MatMul", x, graph.constant(matrix.T, "resize_columns"))
    x = graph.op("MatMul", graph.constant(matrix, "resize_rows"), x)
    if preprocess == "vgg":  # the channels are BGR already
        mean = np.array(IMAGENET_MEAN_BGR, np.float32).reshape(1, 3, 1, 1)
        x = graph.op("Sub", x, graph.constant(mean, "imagenet_mean_bgr"))
    else:  # raw: the network saw RGB 0-255
        x = graph.op(
            "Gather", x, graph.constant(np.array([2, 1, 0], np.int64), "bgr_to_rgb"), axis=1
        )
    channels_last, logits = False, None
    for layer in model.layers[1:]:
        name = layer.name
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = _weights(layer)
            x = graph.op(
                "Conv", x, graph.constant(kernel.transpose(3, 2, 0, 1), f"{name}_kernel"),
                graph.constant(bias, f"{name}_bias"), kernel_shape=list(layer.kernel_size),
                pads=[kernel.shape[0] // 2, kernel.shape[1] // 2] * 2,
            )  # fmt: skip
            x = _activation(graph, x, layer)
        elif isinstance(layer, keras.layers.MaxPooling2D):
            x = graph.op(
                "MaxPool", x, kernel_shape=list(layer.pool_size), strides=list(layer.strides)
            )
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = _weights(layer)
            scale = gamma / np.sqrt(variance + layer.epsilon)
            shape = (1, -1, 1, 1) if not channels_last else (1, 1, 1, -1)
            x = graph.op("Mul", x, graph.constant(scale.reshape(shape), f"{name}_scale"))
            shift = (beta - mean * scale).reshape(shape)
            x = graph.op("Add", x, graph.constant(shift, f"{name}_shift"))
        elif isinstance(layer, keras.layers.Dense):
            if not channels_last:  # Keras applies Dense, and flattens, channels last
                x, channels_last = graph.op("Transpose", x, perm=[0, 2, 3, 1]), True
            kernel, bias = _weights(layer)
            x = graph.op("MatMul", x, graph.constant(kernel, f"{name}_kernel"))
            x = graph.op("Add", x, graph.constant(bias, f"{name}_bias"))
            x = _activation(graph, x, layer)
        elif isinstance(layer, keras.layers.Flatten):
            x = graph.op("Flatten", x, axis=1)
        elif (
            isinstance(layer, keras.layers.Activation)
            and layer.activation is keras.activations.sigmoid
        ):
            logits = x
            x = graph.op("Sigmoid", x)
        elif not isinstance(layer, keras.layers.Dropout | keras.layers.Activation):
            raise ValueError(f"{name}: a {type(layer).__name__} layer has no ONNX form here")
    if logits is None:
        raise ValueError(f"{model.name}: no sigmoid output, so no logits for the embedding")
    width = model.output_shape[-1]
    x = _select_columns(graph, x, columns, width)
    graph.nodes.append(helper.make_node("Identity", [logits], [EMBEDDING], name=EMBEDDING))
    inputs = [
        helper.make_tensor_value_info(
            INPUT, TensorProto.FLOAT, ["N", WD_INPUT_SIZE, WD_INPUT_SIZE, 3]
        )
    ]
    outputs = [
        helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", len(columns)]),
        helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["N", width]),
    ]
    body = helper.make_graph(graph.nodes, model.name, inputs, outputs, graph.initializers)
    exported = helper.make_model(body, opset_imports=[helper.make_opsetid("", OPSET)])
    exported.producer_name = "alt-i2v"
    helper.set_model_props(exported, {EMBEDDING_LAYER_KEY: EMBEDDING_LAYER})
    return exported


def _activation(graph: _Builder, x: str, layer: keras.layers.Layer) -> str:
    """`layer`'s relu, or nothing for a linear one."""
    if layer.activation is keras.activations.relu:
        return graph.op("Relu", x)
    if layer.activation is not keras.activations.linear:
        raise ValueError(
            f"{layer.name}: activation {layer.activation.__name__} has no ONNX form here"
        )
    return x


def _select_columns(graph: _Builder, x: str, columns: list[int | None], width: int) -> str:
    """The probabilities `x` [N, width] as [N, len(columns)] named OUTPUT."""
    if None in columns:  # a column of zeros at index `width`, for the rows the model lacks
        zero = graph.op("Mul", graph.op("ReduceMax", x, axes=[1], keepdims=1),
                        graph.constant(np.zeros(1, np.float32), "zero"))  # fmt: skip
        x = graph.op("Concat", x, zero, axis=1)
    indices = np.array([width if column is None else column for column in columns], np.int64)
    graph.nodes.append(
        helper.make_node("Gather", [x, graph.constant(indices, "csv_order")], [OUTPUT], axis=1)
    )
    return OUTPUT
