"""Runtime names: the one list, and one line for a wrong name."""

import pytest

from scission import runtimes
from scission.errors import ScissionError, UnknownRuntime


def test_every_runtime_and_auto_is_accepted():
    for name in (*runtimes.RUNTIMES, "auto"):
        assert runtimes.check_runtime(name) == name


def test_unknown_runtime_names_the_accepted_ones():
    with pytest.raises(UnknownRuntime, match="unknown runtime 'tensorrt'; use one of tf-function, onnxruntime") as err:
        runtimes.check_runtime("tensorrt")
    assert isinstance(err.value, ScissionError) and "\n" not in str(err.value)
    with pytest.raises(UnknownRuntime):
        runtimes.check_runtime("auto", allow_auto=False)
