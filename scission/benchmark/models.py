"""Which models scission can benchmark, and how each is built or loaded (TensorFlow imported lazily).

The 18 Keras applications of the original Scission are built with random weights (nothing can be
downloaded); ``weights_path`` loads real ones from a local file. User models come from a ``.keras``
file or a SavedModel directory; models with custom layers load through a ``custom_objects`` module, and
``Lambda`` layers (Python code stored in the file) only when the user says ``unsafe``. Every failure
becomes a ``BenchmarkError`` naming the file and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scission.errors import BenchmarkError, UnknownModel


@dataclass(frozen=True)
class ApplicationSpec:
    """A Keras application: constructor name in ``keras.applications``, preprocessing module, input size."""

    constructor: str
    family: str
    image_size: int


APPLICATIONS: dict[str, ApplicationSpec] = {
    "vgg16": ApplicationSpec("VGG16", "vgg16", 224),
    "vgg19": ApplicationSpec("VGG19", "vgg19", 224),
    "xception": ApplicationSpec("Xception", "xception", 299),
    "resnet50": ApplicationSpec("ResNet50", "resnet", 224),
    "resnet101": ApplicationSpec("ResNet101", "resnet", 224),
    "resnet152": ApplicationSpec("ResNet152", "resnet", 224),
    "resnet50v2": ApplicationSpec("ResNet50V2", "resnet_v2", 224),
    "resnet101v2": ApplicationSpec("ResNet101V2", "resnet_v2", 224),
    "resnet152v2": ApplicationSpec("ResNet152V2", "resnet_v2", 224),
    "inception_v3": ApplicationSpec("InceptionV3", "inception_v3", 299),
    "inceptionresnet_v2": ApplicationSpec("InceptionResNetV2", "inception_resnet_v2", 299),
    "mobilenet": ApplicationSpec("MobileNet", "mobilenet", 224),
    "mobilenetv2": ApplicationSpec("MobileNetV2", "mobilenet_v2", 224),
    "densenet121": ApplicationSpec("DenseNet121", "densenet", 224),
    "densenet169": ApplicationSpec("DenseNet169", "densenet", 224),
    "densenet201": ApplicationSpec("DenseNet201", "densenet", 224),
    "nasnetmobile": ApplicationSpec("NASNetMobile", "nasnet", 224),
    "nasnetlarge": ApplicationSpec("NASNetLarge", "nasnet", 331),
}


@dataclass(frozen=True)
class ModelSource:
    """What to benchmark: an application by name, or a user model file; optional local weights."""

    name: str
    model_file: str | None = None
    weights_path: str | None = None
    custom_objects: str | None = None  # module name or .py file (``--custom-objects``)
    unsafe: bool = False  # Keras safe_mode=False: lets Lambda layers run code stored in the file

    @property
    def is_application(self) -> bool:
        return self.model_file is None


@dataclass(frozen=True)
class LoadedModel:
    """A built Keras model, how to preprocess an image for it (None: scale pixels to [0, 1]) and its build time."""

    name: str
    model: Any
    preprocess: Callable[[Any], Any] | None
    build_s: float


def known_models() -> list[str]:
    return list(APPLICATIONS)


def check_application(name: str) -> ApplicationSpec:
    """The spec of a known application.

    Raises:
        UnknownModel: the name is not one of the 18 applications (the message lists them).
    """
    spec = APPLICATIONS.get(name)
    if spec is None:
        raise UnknownModel(name, known_models())
    return spec


def source_for_file(path: str, weights_path: str | None = None, custom_objects: str | None = None,
                    unsafe: bool = False) -> ModelSource:
    """A user model source named after its file (``tiny.keras`` -> ``tiny``), checked to exist."""
    file = Path(path)
    if not file.exists():
        raise BenchmarkError(f"model file {path} does not exist; give a .keras file or a SavedModel directory")
    name = file.name[: -len(".keras")] if file.name.endswith(".keras") else file.name
    return ModelSource(name=name or "model", model_file=str(file), weights_path=weights_path,
                       custom_objects=custom_objects, unsafe=unsafe)


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or Path(spec).is_file()


def check_custom_objects(spec: str) -> None:
    """Check that ``--custom-objects`` names a .py file or an importable module, without importing it
    (it will import Keras, which only the per-model child may load).

    Raises:
        BenchmarkError: no such file or module.
    """
    if _is_file_spec(spec):
        if not Path(spec).is_file():
            raise BenchmarkError(f"--custom-objects {spec}: no such Python file")
        return
    added = "" not in sys.path and "." not in sys.path
    if added:
        sys.path.insert(0, "")  # the child (python -m ...) imports from the working directory too
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError) as exc:
        raise BenchmarkError(f"--custom-objects {spec}: cannot find module: {reason(exc)}") from None
    finally:
        if added:
            sys.path.remove("")
    if found is None:
        raise BenchmarkError(f"--custom-objects {spec}: no module of that name (give a module name on the "
                             "Python path or a .py file)")


def load_custom_objects(spec: str) -> dict[str, Any]:
    """Import the module or file; its ``custom_objects`` dict (if any) goes to Keras, and importing it
    registers every ``@keras.saving.register_keras_serializable`` class it defines.

    Raises:
        BenchmarkError: the module cannot be imported, or ``custom_objects`` is not a dict.
    """
    try:
        if _is_file_spec(spec):
            path = Path(spec)
            if not path.is_file():
                raise BenchmarkError(f"--custom-objects {spec}: no such Python file")
            module_spec = importlib.util.spec_from_file_location(f"_scission_custom_{path.stem}", path)
            if module_spec is None or module_spec.loader is None:
                raise BenchmarkError(f"--custom-objects {spec}: not a Python file")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(spec)
    except BenchmarkError:
        raise
    except Exception as exc:  # the user's code: any error means "cannot use this module"
        raise BenchmarkError(f"--custom-objects {spec}: importing it failed: {type(exc).__name__}: {reason(exc)}") from None
    objects = getattr(module, "custom_objects", {})
    if not isinstance(objects, dict):
        raise BenchmarkError(f"--custom-objects {spec}: custom_objects is a {type(objects).__name__}, "
                             "not a dict of name -> class or function")
    return objects


def _load_error(path: Path, exc: BaseException, source: ModelSource) -> BenchmarkError:
    """Turn Keras' loading errors into the flag that fixes them."""
    text = reason(exc)
    if "safe_mode" in str(exc) and not source.unsafe:
        return BenchmarkError(f"model file {path} has a Lambda layer (Python code stored in the file), which Keras "
                              "refuses to load safely; pass --unsafe to load it (only for files you trust)")
    if "Could not locate" in str(exc) or "Unknown layer" in str(exc):
        hint = ("; pass --custom-objects MODULE (a module or .py file that defines it, or a custom_objects dict)"
                if source.custom_objects is None else f" (not in --custom-objects {source.custom_objects})")
        return BenchmarkError(f"cannot load model file {path}: {text}{hint}")
    return BenchmarkError(f"cannot load model file {path}: {text}")


def reason(exc: BaseException) -> str:
    """The first sentence of a library's error, which is the part that names the problem."""
    text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    for stop in (" Example error message", " Received: "):
        text = text.split(stop, 1)[0]
    return text[:300]


def _load_weights(model: Any, weights_path: str, label: str) -> None:
    if not Path(weights_path).is_file():
        raise BenchmarkError(f"weights file {weights_path} does not exist")
    try:
        model.load_weights(weights_path)
    except Exception as exc:  # Keras raises ValueError, OSError, KeyError... for files that don't fit
        raise BenchmarkError(f"weights {weights_path} do not fit model {label}: {reason(exc)}") from None


def _load_saved_model_dir(path: Path, keras: Any) -> Any:
    """Wrap a SavedModel's serving signature as a one-layer functional model (Keras 3 has no layer graph for it)."""
    import tensorflow as tf

    if not (path / "saved_model.pb").exists():
        raise BenchmarkError(f"{path} is a directory but not a SavedModel (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(path))
        endpoint = "serve" if "serve" in loaded.signatures else next(iter(loaded.signatures), None)
        if endpoint is None:
            raise BenchmarkError(f"SavedModel {path} has no signatures to call")
        signature = loaded.signatures[endpoint]
        specs = [s for s in signature.structured_input_signature[1].values()]
        if len(specs) != 1:
            raise BenchmarkError(f"SavedModel {path} signature {endpoint!r} takes {len(specs)} inputs; scission needs one")
        spec = specs[0]
        layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint, name="saved_model")
        inputs = keras.Input(shape=tuple(spec.shape[1:]), batch_size=None, dtype=spec.dtype.name, name="input")
        outputs = layer(inputs)
        if isinstance(outputs, dict):
            if len(outputs) != 1:
                raise BenchmarkError(f"SavedModel {path} returns {len(outputs)} outputs; scission profiles one-output models")
            outputs = next(iter(outputs.values()))
        return keras.Model(inputs, outputs, name=path.name)
    except BenchmarkError:
        raise
    except Exception as exc:
        raise BenchmarkError(f"cannot load SavedModel {path}: {reason(exc)}") from None


def load(source: ModelSource) -> LoadedModel:
    """Build or load the model; ``build_s`` covers construction and weight loading.

    Raises:
        BenchmarkError: unknown model, unreadable or corrupt model file, weights that don't fit.
    """
    started = time.perf_counter()
    import keras

    if source.is_application:
        spec = check_application(source.name)
        constructor = getattr(keras.applications, spec.constructor)
        model = constructor(weights=None)
        module = getattr(keras.applications, spec.family)
        preprocess = module.preprocess_input
    else:
        path = Path(source.model_file)
        preprocess = None
        if path.is_dir():
            model = _load_saved_model_dir(path, keras)
        else:
            if path.suffix == ".keras" and not zipfile.is_zipfile(path):
                raise BenchmarkError(f"model file {path} is not a .keras archive (not a zip file); "
                                     "save the model with model.save('name.keras')")
            objects = load_custom_objects(source.custom_objects) if source.custom_objects else None
            try:
                model = keras.saving.load_model(str(path), compile=False, custom_objects=objects,
                                                safe_mode=not source.unsafe)
            except Exception as exc:  # zip errors, ValueError, OSError...: all mean "not a model we can read"
                raise _load_error(path, exc, source) from None
    if source.weights_path is not None:
        _load_weights(model, source.weights_path, source.name)
    return LoadedModel(name=source.name, model=model, preprocess=preprocess, build_s=time.perf_counter() - started)
