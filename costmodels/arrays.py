"""Array types of the cost models. Quantities are float64 arrays with one entry per config (or per device), or a
plain number that numpy broadcasts to every config; masks are bool arrays; labels are string arrays."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]  # one value per config
Floats = FloatArray | float  # per-config values, or one value for all configs
BoolArray = npt.NDArray[np.bool_]  # one flag per config (fits, runnable)
IntArray = npt.NDArray[np.intp]  # indices (a config's device)
StrArray = npt.NDArray[np.str_]  # one label per config or row (device ids, dtype names)
