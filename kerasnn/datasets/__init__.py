"""Datasets: loading, train/test splitting, validation and standardization.

`load()` returns a `Dataset` with float32 features standardized on the training split only,
integer labels for classification and the metadata a model needs (`input_shape`,
`output_units`). Built-in names are listed in `KNOWN`; a path to a `.npz` or `.csv` file is
also accepted.

Layout: `_loaders` (`load()` and the scikit-learn, synthetic and `keras.datasets` sources),
`_files` (`.npz` / `.csv` reading and target encoding), `_dataset` (`Dataset`, the task names,
`validate_arrays()`, `split()`), `_standardizer` (`Standardizer`). Importing this package loads
NumPy only; scikit-learn and Keras are imported by the functions that need them.
"""

from kerasnn.datasets._dataset import TASKS as TASKS
from kerasnn.datasets._dataset import Dataset as Dataset
from kerasnn.datasets._dataset import Task as Task
from kerasnn.datasets._dataset import split as split
from kerasnn.datasets._dataset import validate_arrays as validate_arrays
from kerasnn.datasets._loaders import IMAGE_DATASETS as IMAGE_DATASETS
from kerasnn.datasets._loaders import KNOWN as KNOWN
from kerasnn.datasets._loaders import VIEWS as VIEWS
from kerasnn.datasets._loaders import DatasetDownloadError as DatasetDownloadError
from kerasnn.datasets._loaders import load as load
from kerasnn.datasets._standardizer import Standardizer as Standardizer

__all__ = [
    "IMAGE_DATASETS",
    "KNOWN",
    "TASKS",
    "VIEWS",
    "Dataset",
    "DatasetDownloadError",
    "Standardizer",
    "Task",
    "load",
    "split",
    "validate_arrays",
]
