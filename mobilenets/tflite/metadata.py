"""TFLite model metadata that Android's image-classification and object-detection APIs read.

`add_metadata` writes the metadata flatbuffer (TensorFlow Lite's `metadata_schema.fbs`, file
identifier "M001") into a `.tflite` file, the way the metadata populator of tflite-support and
MediaPipe does: the metadata goes into a model buffer named by a `TFLITE_METADATA` entry, and
the label file is appended to the model as an uncompressed zip archive, the form
`ImageClassifier` (Task Library, MediaPipe Tasks) loads as it is.

Why it is written here: tflite-support pins protobuf < 4 and cannot be installed beside
TensorFlow 2.21, and MediaPipe's writer (1.2.x) fails to import (`mediapipe.tasks.cc` is missing
from its wheel) and requires absl-py 2, which tensorflow-model-optimization rejects. The
`flatbuffers` runtime that TensorFlow already depends on builds the few tables needed.
"""

import io
import zipfile

import flatbuffers
from flatbuffers import number_types, table

from mobilenets import compat, console

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here exists since version 1.0.0

# Field slots (declaration order; a union takes two slots: its type, then its value) and enum
# values of metadata_schema.fbs.
MODEL = dict(name=0, description=1, version=2, subgraph_metadata=3, author=4, license=5,
             min_parser_version=7)
SUBGRAPH = dict(name=0, description=1, input_tensor_metadata=2, output_tensor_metadata=3,
                output_tensor_groups=8)
TENSOR = dict(name=0, description=1, content=3, process_units=4, stats=5, associated_files=6)
CONTENT = dict(content_properties_type=0, content_properties=1, range=2)
VALUE_RANGE = dict(min=0, max=1)
BOUNDING_BOX = dict(index=0, type=1, coordinate_type=2)
TENSOR_GROUP = dict(name=0, tensor_names=1)
GROUPS_PARSER_VERSION = "1.2.0"  # output_tensor_groups
PROCESS_UNIT = dict(options_type=0, options=1)
NORMALIZATION = dict(mean=0, std=1)
STATS = dict(max=0, min=1)
IMAGE_PROPERTIES = dict(color_space=0, default_size=1)
IMAGE_SIZE = dict(width=0, height=1)
ASSOCIATED_FILE = dict(name=0, description=1, type=2)
FEATURE_PROPERTIES, IMAGE_PROPERTIES_TYPE, BOUNDING_BOX_PROPERTIES = 1, 2, 3  # ContentProperties
BOUNDARIES, RATIO = 1, 0  # BoundingBoxType, CoordinateType
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union
COLOR_SPACES = {3: 1, 1: 2}  # channels -> ColorSpaceType RGB, GRAYSCALE
TENSOR_AXIS_LABELS, TENSOR_VALUE_LABELS = 2, 3  # AssociatedFileType


# TFLite_Detection_PostProcess's outputs, in its order: boxes, classes, scores, count
DETECTION_ROLES = ("location", "category", "score", "count")


def add_detection_metadata(content, *, labels, name, description, version="", author="",
                           license=""):
    """Returns `content` (.tflite bytes ending in TFLite_Detection_PostProcess) with object-
    detector metadata and labels, as tflite-support's ObjectDetectorWriter writes them: the
    input as `add_metadata`'s; the four outputs, in the file's output order, named `location`
    (boxes [ymin, xmin, ymax, xmax] as fractions), `category` (class indices, `labels.txt` as
    TENSOR_VALUE_LABELS), `score` and `number of detections`, the first three grouped as
    `detection_result`."""
    from ai_edge_litert.interpreter import Interpreter

    with console.quiet_native():
        interpreter = Interpreter(model_content=bytes(content))
    _, height, width, channels = (int(d) for d in interpreter.get_input_details()[0]["shape"])
    roles = detection_roles(content)
    builder = flatbuffers.Builder(1024)
    image = _image_tensor(builder, height, width, channels)
    outputs = [DETECTION_TENSORS[role](builder) for role in roles]
    group = _table(builder, [
        (TENSOR_GROUP["name"], builder.CreateString("detection_result")),
        (TENSOR_GROUP["tensor_names"], _vector(builder, [
            builder.CreateString(n) for n in ("location", "category", "score")]))])
    subgraph = _table(builder, [
        (SUBGRAPH["name"], builder.CreateString("object_detector")),
        (SUBGRAPH["input_tensor_metadata"], _vector(builder, [image])),
        (SUBGRAPH["output_tensor_metadata"], _vector(builder, outputs)),
        (SUBGRAPH["output_tensor_groups"], _vector(builder, [group]))])
    return _pack(content, builder, subgraph, labels,
                 dict(name=name, description=description, version=version, author=author,
                      license=license), min_parser_version=GROUPS_PARSER_VERSION)


def add_segmentation_metadata(content, *, labels, name, description, version="", author="",
                              license=""):
    """Returns `content` (.tflite bytes of a segmenter: an image in, per-pixel class scores
    [1, H, W, classes] out) with image-segmenter metadata and labels, as tflite-support's
    ImageSegmenterWriter writes them: the output described as a grayscale image per class
    (`segmentation_masks`), `labels.txt` along its class axis."""
    from ai_edge_litert.interpreter import Interpreter

    with console.quiet_native():
        interpreter = Interpreter(model_content=bytes(content))
    _, height, width, channels = (int(d) for d in interpreter.get_input_details()[0]["shape"])
    classes = int(interpreter.get_output_details()[0]["shape"][-1])
    if len(labels) != classes:
        raise ValueError(f"{len(labels)} labels for a model of {classes} classes")
    builder = flatbuffers.Builder(1024)
    image = _image_tensor(builder, height, width, channels)
    properties = _table(builder, [], [(IMAGE_PROPERTIES["color_space"], COLOR_SPACES[1], "Int8")])
    masks_content = _table(builder, [(CONTENT["content_properties"], properties)],
                           [(CONTENT["content_properties_type"], IMAGE_PROPERTIES_TYPE,
                             "Uint8")])
    labels_file = _table(builder, [
        (ASSOCIATED_FILE["name"], builder.CreateString("labels.txt")),
        (ASSOCIATED_FILE["description"], builder.CreateString("class names, one per line"))],
        [(ASSOCIATED_FILE["type"], TENSOR_AXIS_LABELS, "Int8")])
    masks = _table(builder, [
        (TENSOR["name"], builder.CreateString("segmentation_masks")),
        (TENSOR["description"], builder.CreateString(
            f"scores of the {classes} classes of labels.txt at each pixel")),
        (TENSOR["content"], masks_content),
        (TENSOR["associated_files"], _vector(builder, [labels_file]))])
    subgraph = _table(builder, [
        (SUBGRAPH["name"], builder.CreateString("image_segmenter")),
        (SUBGRAPH["input_tensor_metadata"], _vector(builder, [image])),
        (SUBGRAPH["output_tensor_metadata"], _vector(builder, [masks]))])
    return _pack(content, builder, subgraph, labels,
                 dict(name=name, description=description, version=version, author=author,
                      license=license), min_parser_version=MIN_PARSER_VERSION)


def detection_roles(content):
    """The role of each output of the file (location, category, score, count): the
    post-process op's outputs in its order, mapped to the subgraph's outputs."""
    schema = compat.tflite_schema()
    model = compat.tflite_flatbuffer_utils().convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    custom = [op for op in graph.operators
              if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.CUSTOM
              and model.operatorCodes[op.opcodeIndex].customCode
              == b"TFLite_Detection_PostProcess"]
    if len(custom) != 1:
        raise ValueError("not a detection model: no TFLite_Detection_PostProcess op")
    role = dict(zip(list(custom[0].outputs), DETECTION_ROLES, strict=True))
    return [role[tensor] for tensor in graph.outputs]


def add_metadata(content, *, labels, name, description, version="", author="", license=""):
    """Returns `content` (.tflite bytes of an image classifier) with metadata and labels.

    The input is described as an image (RGB or grayscale by its channels, the input's size)
    of raw pixels in [0, 255] with identity normalization (mean 0, std 1: normalization is the
    model's first layer); the output as class probabilities with `labels` attached as
    `labels.txt` (TENSOR_AXIS_LABELS).
    """
    from ai_edge_litert.interpreter import Interpreter

    with console.quiet_native():
        interpreter = Interpreter(model_content=bytes(content))
    input_details = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()[0]
    _, height, width, channels = (int(d) for d in input_details["shape"])
    classes = int(output_details["shape"][-1])
    if len(labels) != classes:
        raise ValueError(f"{len(labels)} labels for a model of {classes} classes")
    builder = flatbuffers.Builder(1024)
    image = _image_tensor(builder, height, width, channels)
    probabilities = _output_tensor(builder, classes)
    subgraph = _table(builder, [
        (SUBGRAPH["name"], builder.CreateString("image_classifier")),
        (SUBGRAPH["input_tensor_metadata"], _vector(builder, [image])),
        (SUBGRAPH["output_tensor_metadata"], _vector(builder, [probabilities])),
    ])
    return _pack(content, builder, subgraph, labels,
                 dict(name=name, description=description, version=version, author=author,
                      license=license), min_parser_version=MIN_PARSER_VERSION)


def _pack(content, builder, subgraph, labels, fields, min_parser_version):
    """`content` with the metadata of `subgraph` (built in `builder`) and model `fields`, and
    `labels` appended as labels.txt."""
    schema = compat.tflite_schema()
    flatbuffer_utils = compat.tflite_flatbuffer_utils()
    strings = {key: builder.CreateString(value) for key, value in (
        *fields.items(), ("min_parser_version", min_parser_version)) if value}
    root = _table(builder, [(MODEL[key], offset) for key, offset in strings.items()]
                  + [(MODEL["subgraph_metadata"], _vector(builder, [subgraph]))])
    builder.Finish(root, file_identifier=FILE_IDENTIFIER)

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = list(builder.Output())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    with_metadata = bytes(flatbuffer_utils.convert_object_to_bytearray(model))

    archive = io.BytesIO(with_metadata)
    with zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_STORED) as files:
        files.writestr("labels.txt", "\n".join(labels) + "\n")
    return archive.getvalue()


def _image_tensor(builder, height, width, channels):
    size = _table(builder, [], [(IMAGE_SIZE["width"], width, "Uint32"),
                                (IMAGE_SIZE["height"], height, "Uint32")])
    properties = _table(builder, [(IMAGE_PROPERTIES["default_size"], size)],
                        [(IMAGE_PROPERTIES["color_space"], COLOR_SPACES[channels], "Int8")])
    content = _table(builder, [(CONTENT["content_properties"], properties)],
                     [(CONTENT["content_properties_type"], IMAGE_PROPERTIES_TYPE, "Uint8")])
    normalization = _table(builder, [
        (NORMALIZATION["mean"], _floats(builder, [0.0] * channels)),
        (NORMALIZATION["std"], _floats(builder, [1.0] * channels))])
    unit = _table(builder, [(PROCESS_UNIT["options"], normalization)],
                  [(PROCESS_UNIT["options_type"], NORMALIZATION_OPTIONS, "Uint8")])
    stats = _table(builder, [(STATS["max"], _floats(builder, [255.0] * channels)),
                             (STATS["min"], _floats(builder, [0.0] * channels))])
    return _table(builder, [
        (TENSOR["name"], builder.CreateString("image")),
        (TENSOR["description"], builder.CreateString(
            f"{'RGB' if channels == 3 else 'Grayscale'} image, {height}x{width}, raw pixels "
            "in [0, 255] (normalization is inside the model)")),
        (TENSOR["content"], content),
        (TENSOR["process_units"], _vector(builder, [unit])),
        (TENSOR["stats"], stats)])


def _output_tensor(builder, classes):
    labels = _table(builder, [
        (ASSOCIATED_FILE["name"], builder.CreateString("labels.txt")),
        (ASSOCIATED_FILE["description"], builder.CreateString("class names, one per line"))],
        [(ASSOCIATED_FILE["type"], TENSOR_AXIS_LABELS, "Int8")])
    features = _table(builder, [])
    content = _table(builder, [(CONTENT["content_properties"], features)],
                     [(CONTENT["content_properties_type"], FEATURE_PROPERTIES, "Uint8")])
    stats = _table(builder, [(STATS["max"], _floats(builder, [1.0])),
                             (STATS["min"], _floats(builder, [0.0]))])
    return _table(builder, [
        (TENSOR["name"], builder.CreateString("probability")),
        (TENSOR["description"], builder.CreateString(
            f"probabilities of the {classes} classes of labels.txt")),
        (TENSOR["content"], content),
        (TENSOR["stats"], stats),
        (TENSOR["associated_files"], _vector(builder, [labels]))])


def _detection_tensor(builder, name, description, properties=None, labels=False):
    """One output of a detector: its content (feature properties unless given), the range of
    its detections axis (dimension 2 of [1, max] / [1, max, 4], as the writer says it), and
    for categories the labels file whose lines the values index."""
    if properties is None:
        properties, kind = _table(builder, []), FEATURE_PROPERTIES
    else:
        kind = BOUNDING_BOX_PROPERTIES
    span = _table(builder, [], [(VALUE_RANGE["min"], 2, "Int32"),
                                (VALUE_RANGE["max"], 2, "Int32")])
    content = _table(builder, [(CONTENT["content_properties"], properties),
                               (CONTENT["range"], span)],
                     [(CONTENT["content_properties_type"], kind, "Uint8")])
    files = []
    if labels:
        files = [(TENSOR["associated_files"], _vector(builder, [_table(builder, [
            (ASSOCIATED_FILE["name"], builder.CreateString("labels.txt")),
            (ASSOCIATED_FILE["description"], builder.CreateString("class names, one per line"))],
            [(ASSOCIATED_FILE["type"], TENSOR_VALUE_LABELS, "Int8")])]))]
    return _table(builder, [(TENSOR["name"], builder.CreateString(name)),
                            (TENSOR["description"], builder.CreateString(description)),
                            (TENSOR["content"], content), *files])


def _boxes_properties(builder):
    builder.StartVector(4, 4, 4)
    for value in reversed([1, 0, 3, 2]):  # where left, top, right, bottom are in a box
        builder.PrependUint32(value)
    index = builder.EndVector()
    return _table(builder, [(BOUNDING_BOX["index"], index)],
                  [(BOUNDING_BOX["type"], BOUNDARIES, "Int8"),
                   (BOUNDING_BOX["coordinate_type"], RATIO, "Int8")])


DETECTION_TENSORS = {
    "location": lambda b: _detection_tensor(
        b, "location", "boxes [ymin, xmin, ymax, xmax] as fractions of the image",
        _boxes_properties(b)),
    "category": lambda b: _detection_tensor(
        b, "category", "class indices into labels.txt", labels=True),
    "score": lambda b: _detection_tensor(b, "score", "scores of the detections"),
    "count": lambda b: _detection_tensor(b, "number of detections",
                                         "how many detections are valid"),
}


def _table(builder, offsets, scalars=()):
    """A table of (slot, offset) references and (slot, value, kind) scalars."""
    slots = [slot for slot, *_ in offsets] + [slot for slot, *_ in scalars]
    builder.StartObject(max(slots, default=-1) + 1)
    for slot, offset in offsets:
        builder.PrependUOffsetTRelativeSlot(slot, offset, 0)
    for slot, value, kind in scalars:
        getattr(builder, f"Prepend{kind}Slot")(slot, value, 0)
    return builder.EndObject()


def _vector(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder, values):
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(value)
    return builder.EndVector()


def read_metadata(content):
    """The metadata and associated files of a .tflite file, as plain dicts (None if none).

    Reads what `add_metadata` writes: model name, description, version, parser version; per
    tensor its name, description, content type, color space, normalization, stats and
    associated files; and `files`, the appended archive's {name: text}.
    """
    flatbuffer_utils = compat.tflite_flatbuffer_utils()

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    entry = next((m for m in (model.metadata or []) if m.name.decode() == METADATA_NAME), None)
    if entry is None:
        return None
    data = bytes(bytearray(model.buffers[entry.buffer].data))
    if data[4:8] != FILE_IDENTIFIER:
        raise ValueError(f"metadata buffer has identifier {data[4:8]!r}, not {FILE_IDENTIFIER}")
    root = _Reader(bytearray(data),
                   flatbuffers.encode.Get(number_types.UOffsetTFlags.packer_type, data, 0))
    subgraph = root.tables(MODEL["subgraph_metadata"])[0]
    with zipfile.ZipFile(io.BytesIO(bytes(content))) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    return {
        "name": root.string(MODEL["name"]),
        "description": root.string(MODEL["description"]),
        "version": root.string(MODEL["version"]),
        "author": root.string(MODEL["author"]),
        "license": root.string(MODEL["license"]),
        "min_parser_version": root.string(MODEL["min_parser_version"]),
        "inputs": [_read_tensor(t) for t in subgraph.tables(SUBGRAPH["input_tensor_metadata"])],
        "outputs": [_read_tensor(t)
                    for t in subgraph.tables(SUBGRAPH["output_tensor_metadata"])],
        "files": files,
    }


def _read_tensor(tensor):
    content = tensor.table(TENSOR["content"])
    kind = content.scalar(CONTENT["content_properties_type"], "Uint8")
    result = {"name": tensor.string(TENSOR["name"]),
              "description": tensor.string(TENSOR["description"]),
              "content": {FEATURE_PROPERTIES: "feature", IMAGE_PROPERTIES_TYPE: "image"}.get(kind)}
    if kind == IMAGE_PROPERTIES_TYPE:
        image = content.table(CONTENT["content_properties"])
        spaces = {value: name for name, value in (("RGB", 1), ("GRAYSCALE", 2))}
        result["color_space"] = spaces.get(image.scalar(IMAGE_PROPERTIES["color_space"], "Int8"))
        size = image.table(IMAGE_PROPERTIES["default_size"])  # a segmenter's masks: none
        if size is not None:
            result["size"] = [size.scalar(IMAGE_SIZE["height"], "Uint32"),
                              size.scalar(IMAGE_SIZE["width"], "Uint32")]
    for unit in tensor.tables(TENSOR["process_units"]):
        if unit.scalar(PROCESS_UNIT["options_type"], "Uint8") == NORMALIZATION_OPTIONS:
            options = unit.table(PROCESS_UNIT["options"])
            result["normalization"] = {"mean": options.floats(NORMALIZATION["mean"]),
                                       "std": options.floats(NORMALIZATION["std"])}
    stats = tensor.table(TENSOR["stats"])
    if stats is not None:
        result["stats"] = {"min": stats.floats(STATS["min"]), "max": stats.floats(STATS["max"])}
    result["associated_files"] = [
        {"name": f.string(ASSOCIATED_FILE["name"]),
         "description": f.string(ASSOCIATED_FILE["description"]),
         "type": "TENSOR_AXIS_LABELS" if f.scalar(ASSOCIATED_FILE["type"], "Int8")
         == TENSOR_AXIS_LABELS else f.scalar(ASSOCIATED_FILE["type"], "Int8")}
        for f in tensor.tables(TENSOR["associated_files"])]
    return result


class _Reader:
    """Field access on one flatbuffer table by slot number."""

    def __init__(self, data, position):
        self._table = table.Table(data, position)

    def _field(self, slot):
        """The field's absolute position, or None if it is absent (default value)."""
        offset = self._table.Offset(4 + 2 * slot)
        return offset + self._table.Pos if offset else None

    def string(self, slot):
        field = self._field(slot)
        return None if field is None else self._table.String(field).decode()

    def scalar(self, slot, kind):
        field = self._field(slot)
        return 0 if field is None else self._table.Get(getattr(number_types, f"{kind}Flags"),
                                                       field)

    def table(self, slot):
        field = self._field(slot)
        return None if field is None else _Reader(self._table.Bytes, self._table.Indirect(field))

    def _vector(self, slot):
        field = self._field(slot)
        if field is None:
            return 0, 0
        return self._table.Vector(field - self._table.Pos), self._table.VectorLen(
            field - self._table.Pos)

    def tables(self, slot):
        start, length = self._vector(slot)
        return [_Reader(self._table.Bytes, self._table.Indirect(start + 4 * i))
                for i in range(length)]

    def floats(self, slot):
        start, length = self._vector(slot)
        return [self._table.Get(number_types.Float32Flags, start + 4 * i) for i in range(length)]
