"""Device choice and seeding, shared by every torch estimator."""

import contextlib

import numpy as np
import torch
from sklearn.utils import check_random_state


def resolve_device(device):
    """Turn the estimators' ``device`` parameter into a concrete device string.

    ``"auto"`` picks ``"cuda"`` when a CUDA device is available and ``"cpu"``
    otherwise; any other value must be a device torch understands.

    Examples
    --------
    >>> from sklearn_lt.torch import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'.") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but this torch has no CUDA device "
            f"(torch {torch.__version__}); use device='auto' or 'cpu', or install a CUDA build of torch."
        )
    return str(parsed)


def draw_seed(random_state):
    """One 31-bit seed from an int, a RandomState or None (sklearn's random_state contract)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed, device="cpu"):
    """Run a block with torch's global RNG seeded and float32 as the default dtype; restore both after.

    Module initialisation and dropout use the global generator; forking it keeps
    ``fit`` reproducible without changing the random stream of the user's program.
    The models compute in float32: under a caller's
    ``torch.set_default_dtype(torch.float64)`` the modules built in the block
    would be float64 and fail on the float32 data ("mat1 and mat2 must have
    the same dtype").
    """
    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.device(device).index or 0]
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float32)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.set_default_dtype(default_dtype)
