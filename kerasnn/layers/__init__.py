"""kerasnn's own layers, written with `keras.ops` and registered for saving (package "kerasnn").

- `Maxout(units, pieces)`: dense maxout units; `MaxoutChannels(num_units | pieces)`: max over
  groups of consecutive channels (conv nets).
- `PELU`: parametric ELU with learnable a, b > 0 (`MinValue` keeps them positive).

`kerasnn.activations` registers ``"maxout"`` (`MaxoutChannels(pieces=2)` after a linear layer the
builders widen `pieces` times) and ``"pelu"``, so both work in every builder and recipe.
"""

from kerasnn.layers.elu import PELU as PELU
from kerasnn.layers.elu import MinValue as MinValue
from kerasnn.layers.maxout import Maxout as Maxout
from kerasnn.layers.maxout import MaxoutChannels as MaxoutChannels

__all__ = ["PELU", "Maxout", "MaxoutChannels", "MinValue"]
