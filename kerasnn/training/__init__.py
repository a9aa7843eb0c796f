"""The training facade: `compile`, `fit`, `evaluate` — steps 3 to 5 of the lectures' recipe.

`compile` picks the optimizer and the task's loss and metrics (`_compile`, `_tasks`); `fit`
feeds the arrays through a seeded `tf.data` pipeline (`_pipeline`), runs kerasnn's callbacks
in order (`_callbacks`), reads how training ended (`_outcome`) into a `FitResult` (`result`)
and writes the run folder (`_run_files`); `evaluate` scores the test split. Epochs are counted
from 1 wherever a person reads them (`FitResult`, ``metrics.json``, ``history.csv``).
"""

from kerasnn.training._callbacks import PROBE_SAMPLES as PROBE_SAMPLES
from kerasnn.training._compile import compile as compile
from kerasnn.training._data import ArrayPair as ArrayPair
from kerasnn.training._data import Data as Data
from kerasnn.training._data import arrays as arrays
from kerasnn.training._data import check_data as check_data
from kerasnn.training._evaluate import evaluate as evaluate
from kerasnn.training._fit import fit as fit
from kerasnn.training._pipeline import EVAL_BATCH_SIZE as EVAL_BATCH_SIZE
from kerasnn.training._pipeline import MAX_STEPS_PER_EXECUTION as MAX_STEPS_PER_EXECUTION
from kerasnn.training._pipeline import array_batches as array_batches
from kerasnn.training._pipeline import auto_steps_per_execution as auto_steps_per_execution
from kerasnn.training._pipeline import pipeline_options as pipeline_options
from kerasnn.training._tasks import default_loss as default_loss
from kerasnn.training._tasks import default_metrics as default_metrics
from kerasnn.training._tasks import infer_task as infer_task
from kerasnn.training._tasks import task_of as task_of
from kerasnn.training.result import FitResult as FitResult

__all__ = [
    "EVAL_BATCH_SIZE",
    "MAX_STEPS_PER_EXECUTION",
    "PROBE_SAMPLES",
    "ArrayPair",
    "Data",
    "FitResult",
    "array_batches",
    "arrays",
    "auto_steps_per_execution",
    "check_data",
    "compile",
    "default_loss",
    "default_metrics",
    "evaluate",
    "fit",
    "infer_task",
    "pipeline_options",
    "task_of",
]
