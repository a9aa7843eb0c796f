"""Export a trained model for serving, atomically, and prove the artifact before it lands.

`export` writes a TensorFlow SavedModel through Keras's own `model.export` (a ``serve`` endpoint
and TF-Serving's ``serving_default`` signature, batch dimension free) or a ``.keras`` file
through `model.save`. The loader's whole input transform (`kerasnn.input_transform`: reshape,
rescaling such as the digits' ÷16, standardization) can be baked in as Keras layers
(`dataset_preprocessing`), so the artifact takes the values the data source gives.

Every export is staged in a hidden sibling folder ``.<name>.partial/``, reloaded there in a
*fresh* Python process (`tf.saved_model.load` / `keras.saving.load_model`) and compared with the
in-memory model on a probe batch; only a verified artifact is renamed into place. A crash or a
kill at any point leaves the earlier artifact (or nothing) at the target, never a half-written
one, and the verifying process dies with its parent (Linux: ``PR_SET_PDEATHSIG``; elsewhere it
polls its parent), so a killed export leaves no process behind.

`load` reads either format back as a `LoadedModel` whose `predict` checks the input's shape and
dtype; ``.keras`` files load with ``safe_mode=True`` unless the caller opts out. `read_inputs`
and `write_outputs` are the ``.npy`` / ``.csv`` files of ``kerasnn predict``. A run folder (its
recipe says what to bake in) is exported by `kerasnn.recipe.export_run`.

Modules: `_serving` (input spec, serving model, preprocessing), `_artifact` (`export`, the
staging and the target checks), `_verify` (the fresh-process reload), `loading` (`load`),
`_io` (input and output files).
"""

from kerasnn.export._artifact import DEFAULT_TOLERANCE as DEFAULT_TOLERANCE
from kerasnn.export._artifact import FORMATS as FORMATS
from kerasnn.export._artifact import PROBE_SIZE as PROBE_SIZE
from kerasnn.export._artifact import ExportResult as ExportResult
from kerasnn.export._artifact import check_export_target as check_export_target
from kerasnn.export._artifact import export as export
from kerasnn.export._artifact import export_file as export_file
from kerasnn.export._io import read_inputs as read_inputs
from kerasnn.export._io import write_outputs as write_outputs
from kerasnn.export._serving import INPUT_NAME as INPUT_NAME
from kerasnn.export._serving import SERVE_ENDPOINT as SERVE_ENDPOINT
from kerasnn.export._serving import SERVING_SIGNATURE as SERVING_SIGNATURE
from kerasnn.export._serving import SOURCE_PROBE_SIZE as SOURCE_PROBE_SIZE
from kerasnn.export._serving import Preprocessing as Preprocessing
from kerasnn.export._serving import dataset_preprocessing as dataset_preprocessing
from kerasnn.export._verify import ExportVerificationError as ExportVerificationError
from kerasnn.export.loading import LoadedModel as LoadedModel
from kerasnn.export.loading import load as load

__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMATS",
    "INPUT_NAME",
    "PROBE_SIZE",
    "SERVE_ENDPOINT",
    "SERVING_SIGNATURE",
    "SOURCE_PROBE_SIZE",
    "ExportResult",
    "ExportVerificationError",
    "LoadedModel",
    "Preprocessing",
    "check_export_target",
    "dataset_preprocessing",
    "export",
    "export_file",
    "load",
    "read_inputs",
    "write_outputs",
]
