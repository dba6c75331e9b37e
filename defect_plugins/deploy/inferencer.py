"""``DefectInferencer``: run any exported model on images in memory, one result type for all families.

Plays the role of anomalib's ``OpenVINOInferencer`` (``anomalib/deploy/inferencers/openvino_inferencer.py``:
read the IR, compile it, ``predict(image)``) for the three families of this package, and also
accepts the IRs anomalib itself writes (``anomalib export --export_type openvino``), adopted at
load time (:func:`.families.anomaly.adopt_anomalib_ir`)::

    from defect_plugins.deploy import DefectInferencer

    inferencer = DefectInferencer("model.xml", device="CPU", precision="f32")
    inferencer = DefectInferencer("bundle/")     # a bundle of defect-fit: its threshold and rules too
    result = inferencer.predict(frame)           # BGR uint8 array or a path
    result.decision, result.regions, result.to_dict()
    cv2.imwrite("overlay.png", result.overlay())
    for result in inferencer.predict_many(paths):  # OpenVINO's async requests, results in input order
        ...

Only numpy, OpenCV and OpenVINO are imported: this runs in the runtime-only install.

A model bundle (:mod:`.bundle`: a folder, its ``bundle.json`` or a ``.tar``/``.tar.gz`` of it) is
accepted wherever an IR is: the inferencer loads the bundle's IR of the weight precision asked
(``weights``, default the bundle's ``default_precision``) and judges with the bundle's calibrated
threshold(s), OK class and rule file (:func:`.bundle.bundle_settings`). A threshold or rule file
given to the constructor wins over the bundle's: the bundle supplies only what the caller left unset.

``start`` / ``InferenceJob.result`` split ``predict`` in two for callers that overlap work: a station
starts every model on an image before it collects the first result, so the models' inferences run side by
side while Python post-processes the ones already done. Requests come from a pool (one more is created when
every one is busy, up to ``max_requests``), so ``predict`` and ``start`` may be called from several threads.

``predict_many`` keeps ``jobs`` infer requests busy (OpenVINO's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``
by default) as a ring driven from the calling thread with ``start_async`` / ``wait``: each new
image goes to the oldest request once that one is collected, so results come in input order and
images are read and post-processed while the other requests run. No Python callback is given to
OpenVINO (``AsyncInferQueue.set_callback``): a callback runs on an OpenVINO thread, and the Python
objects it holds (the compiled model, through the closure) could then be released there; a
compiled model destroyed on one of its own threads makes OpenVINO join that thread from itself
(``std::system_error: Resource deadlock avoided``, process aborted).

The precision is explicit (``INFERENCE_PRECISION_HINT``, default ``f32``): the bf16 default of
recent CPUs moved an anomaly score from 0.744 to 0.0 here. An image that cannot be read, inferred
or post-processed gives a result with ``status="error"`` naming the step; nothing is raised for it.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np

from defect_plugins.imaging.files import ImageReadError, read_bgr
from defect_plugins.imaging.geometry import to_input

from .bundle import Bundle, BundleError, bundle_settings, is_bundle, load_bundle
from .families import PostSettings, get_family
from .grading.rules import RuleSet, default_rules, load_rules
from .families import anomaly as anomaly_family
from .metadata import MetadataError, ModelMetadata
from .result import InferenceResult
from .runtime import compile_model, read_metadata, read_model

ImageLike = Union[str, Path, np.ndarray]
# predict_many also takes (name, image or the exception that stopped it from being read), as infer.iter_sources yields
Item = Union[ImageLike, tuple[str, Union[np.ndarray, Exception, str, Path]]]


def load_ir(model: str | Path) -> tuple[Any, ModelMetadata]:
    """``(ov.Model, metadata)`` of an IR of this package, or of an ``anomalib export`` IR (adopted)."""
    path = Path(model)
    ov_model = read_model(path)
    try:
        return ov_model, read_metadata(ov_model, path=path)
    except MetadataError:
        if not anomaly_family.is_anomalib_ir(ov_model):
            raise
    return anomaly_family.adopt_anomalib_ir(ov_model, path)


def _check_model(path: Path, metadata: ModelMetadata, bundle: Bundle | None, weights: str | None) -> None:
    """The IR is the one asked for: a bundle's family, or an IR's weight precision when the caller named one."""
    if bundle is not None:
        wanted = (weights or bundle.default_precision).upper()
        if metadata.family != bundle.family or metadata.precision != wanted:
            raise BundleError(f"{path}: a {metadata.family} model with {metadata.precision} weights, but bundle "
                              f"{bundle.root} lists it as its {bundle.family} {wanted} model: the bundle was "
                              f"assembled wrongly; write it again (defect-fit)")
        return
    if weights is not None and weights.upper() != metadata.precision:
        raise ValueError(f"{path}: an IR with {metadata.precision} weights, not {weights.upper()}; weights= chooses "
                         f"among the models of a bundle, for an IR it can only name the IR's own")


class InferenceJob:
    """One image started on one of the inferencer's requests (:meth:`DefectInferencer.start`).

    :meth:`result` waits for the request, gives it back to the pool and post-processes; call it exactly
    once (a job never collected keeps its request out of the pool). ``started`` is ``time.perf_counter()``
    at the start, for the caller's timing.
    """

    def __init__(self, inferencer: DefectInferencer, entry: _Pending) -> None:
        self._inferencer = inferencer
        self._entry = entry
        self.started = time.perf_counter()

    def result(self) -> InferenceResult:
        """The image's result (an error result when it could not be inferred or post-processed)."""
        return self._inferencer._collect(self._entry, self._inferencer._pool.put)


@dataclass
class _Pending:
    """An image handed to a request (or already failed), waiting to be collected in input order."""

    source: str
    image: np.ndarray | None
    request: Any = None
    error: str | None = None


class DefectInferencer:
    """An exported model (this package's or anomalib's) compiled for one device and precision.

    Args:
        model: path to ``model.xml`` (``model.bin`` next to it), or a model bundle (its folder,
            ``bundle.json`` or archive; :mod:`.bundle`).
        device: OpenVINO device (``CPU``).
        precision: ``INFERENCE_PRECISION_HINT``: ``f32`` (default; use it for thresholded scores),
            ``f16`` or ``bf16``.
        weights: a bundle's weight precision to load (``FP32``, ``INT8``; default the bundle's
            ``default_precision``). An IR has one: given for an IR, it must name that IR's weight
            precision (a check that the file is what the caller expects), else ``ValueError``.
            Not ``precision``, which has always been the inference precision hint.
        performance_hint: ``LATENCY`` (default: one image at a time) or ``THROUGHPUT`` (several
            streams, for :meth:`predict_many` over many images, or several threads calling :meth:`start`).
        max_requests: the most infer requests :meth:`predict` / :meth:`start` keep (callers beyond it wait
            for a free one); ``None``: OpenVINO's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``.
        num_threads: inference threads (``None``: OpenVINO decides).
        rules, min_area, image_threshold, pixel_threshold, ok_class, ok_threshold, quantify:
            post-processing (:class:`.families.PostSettings`; ``rules``: a rule file's path or a
            loaded ``RuleSet``; ``quantify=False``: a classifier gives its class only, without the
            paper's regions, which cost 1-3 ms per 200 x 200 image). ``None``: the bundle's value
            (for a bundle), else the default.

    Attributes:
        bundle: the loaded :class:`.bundle.Bundle`, or ``None`` for a bare IR.
        path: the ``.xml`` loaded (inside the bundle for a bundle).
    """

    def __init__(self, model: str | Path, device: str = "CPU", precision: str = "f32", *,
                 weights: str | None = None, performance_hint: str = "LATENCY", num_threads: int | None = None,
                 max_requests: int | None = None,
                 rules: RuleSet | str | Path | None = None, min_area: int = 4, image_threshold: float | None = None,
                 pixel_threshold: float | None = None, ok_class: str | None = None, ok_threshold: float | None = None,
                 quantify: bool = True) -> None:
        # a folder is a bundle or nothing (load_bundle says which file is missing)
        self.bundle: Bundle | None = load_bundle(model) if is_bundle(model) or Path(model).is_dir() else None
        self.path = self.bundle.model_xml(weights) if self.bundle is not None else Path(model)
        ov_model, self.metadata = load_ir(self.path)
        _check_model(self.path, self.metadata, self.bundle, weights)
        self.family = get_family(self.metadata.family)
        self.precision = precision
        self.device = device
        if ok_threshold is not None and ok_class is None and self.bundle is not None:
            ok_class = self.bundle.ok_class  # an explicit OK threshold of the bundle's OK class
        settings = PostSettings(rules=load_rules(rules) if isinstance(rules, (str, Path)) else rules or default_rules(),
                                min_area=int(min_area), quantify=quantify, image_threshold=image_threshold,
                                pixel_threshold=pixel_threshold, ok_class=ok_class, ok_threshold=ok_threshold)
        self.settings = bundle_settings(self.bundle, settings, weights) if self.bundle is not None else settings
        self.compiled = compile_model(ov_model, precision, performance_hint=performance_hint, device=device,
                                      num_threads=num_threads)
        self._size = None if self.metadata.dynamic else tuple(self.metadata.input_size)
        self._num_outputs = len(self.compiled.outputs)
        self.max_requests = int(max_requests) if max_requests else self.optimal_jobs()
        if self.max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}")
        self._pool: queue.Queue = queue.Queue()  # idle requests of predict / start
        self._created = 0
        self._create_lock = threading.Lock()

    def __repr__(self) -> str:
        bundle = f", bundle={self.bundle.name!r}" if self.bundle is not None else ""
        return (f"DefectInferencer({str(self.path)!r}, family={self.metadata.family!r}{bundle}, "
                f"weights={self.metadata.precision!r}, precision={self.precision!r}, device={self.device!r})")

    def optimal_jobs(self) -> int:
        """OpenVINO's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` for this compiled model."""
        return int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    # ------------------------------------------------------------------ one image

    def predict(self, image: ImageLike, *, source: str | None = None) -> InferenceResult:
        """Infer one image (a path, or a uint8 BGR ``(H, W, 3)`` / grey ``(H, W)`` array)."""
        return self.start(image, source=source).result()

    def start(self, image: ImageLike, *, source: str | None = None) -> InferenceJob:
        """Read and resize ``image`` and start its inference on a free request; collect with ``.result()``.

        Waits for a request when ``max_requests`` are busy. A failure to read, resize or start gives a job
        whose result is the error result.
        """
        entry, batch = self._prepare(image, source, 0)
        if batch is not None:
            request = self._take_request()
            try:
                request.start_async({0: batch})  # copies the input; nothing of Python's stays with the request
                entry.request = request
            except RuntimeError as error:
                self._pool.put(request)
                entry.error = f"inference: {error}"
        return InferenceJob(self, entry)

    def _take_request(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._create_lock:
            if self._created < self.max_requests:
                self._created += 1
                return self.compiled.create_infer_request()
        return self._pool.get()

    # ------------------------------------------------------------------ many images

    def predict_many(self, images: Iterable[Item], *, jobs: int = 0) -> Iterator[InferenceResult]:
        """Infer every image with ``jobs`` asynchronous requests; yield the results in input order.

        Items are paths, arrays, or ``(name, array / path / exception)`` pairs. An item that fails
        yields an error result and the others go on. Stopping the iteration early waits for the
        requests in flight before they are released.
        """
        jobs = jobs if jobs > 0 else self.optimal_jobs()
        idle = deque(self.compiled.create_infer_request() for _ in range(jobs))
        pending: deque[_Pending] = deque()  # oldest first; every request not idle is in here
        try:
            for index, item in enumerate(images):
                entry, batch = self._prepare(item, None, index)
                if batch is not None:
                    while not idle:  # collect the oldest until a request is free
                        yield self._collect(pending.popleft(), idle.append)
                    request = idle.popleft()
                    try:
                        request.start_async({0: batch})  # copies the input; nothing of Python's stays with it
                        entry.request = request
                    except RuntimeError as error:
                        idle.append(request)
                        entry.error = f"inference: {error}"
                pending.append(entry)
            while pending:
                yield self._collect(pending.popleft(), idle.append)
        finally:
            for entry in pending:  # interrupted: let OpenVINO finish before the requests are released
                if entry.request is not None:
                    with contextlib.suppress(RuntimeError):
                        entry.request.wait()

    # ------------------------------------------------------------------ steps

    def _prepare(self, item: Any, source: str | None, index: int) -> tuple[_Pending, np.ndarray | None]:
        """Read and resize one item: ``(entry, model input)``, or ``(entry with error, None)``."""
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            source, item = item
        if isinstance(item, (str, Path)):
            source = source or str(item)
            try:
                item = read_bgr(item)
            except ImageReadError as error:
                return _Pending(source, None, error=str(error)), None
        source = source or f"image[{index}]"
        if isinstance(item, Exception):
            return _Pending(source, None, error=str(item)), None
        image = np.asarray(item)
        if image.ndim == 2 and image.dtype == np.uint8:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        entry = _Pending(source, image)
        try:
            return entry, to_input(image, self._size, self.metadata.resize)
        except (cv2.error, ValueError) as error:
            entry.error = f"resize: {error}"
            return entry, None

    def _outputs(self, request: Any) -> list[np.ndarray]:
        return [request.get_output_tensor(i).data.copy() for i in range(self._num_outputs)]

    def _collect(self, entry: _Pending, give_back: Callable[[Any], None]) -> InferenceResult:
        """Wait for ``entry``'s request, give the request back (``give_back(request)``), post-process."""
        if entry.request is None:
            return self._failure(entry)
        request, entry.request = entry.request, None
        try:
            request.wait()
            outputs = self._outputs(request)
        except RuntimeError as error:  # OpenVINO reports a failed inference as RuntimeError
            entry.error = f"inference: {error}"
            return self._failure(entry)
        finally:
            give_back(request)
        return self._finish(entry, outputs)

    def _finish(self, entry: _Pending, outputs: list[np.ndarray]) -> InferenceResult:
        try:
            return self.family.postprocess(entry.image, outputs, self.metadata, self.settings, entry.source)
        except Exception as error:  # noqa: BLE001 - a bad frame must not stop a production run
            entry.error = f"post-processing: {error}"
            return self._failure(entry)

    def _failure(self, entry: _Pending) -> InferenceResult:
        return InferenceResult.failure(entry.source, self.metadata.family, entry.error or "unknown error",
                                       image=entry.image)
