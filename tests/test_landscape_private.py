"""Private APIs the landscape relies on, each looked up in one place with a public fallback.

These fail when a locked dependency drops what the fast path uses: then the
fallback runs (and says so), but the lookup should be revisited.
"""

from __future__ import annotations

import copy
from pathlib import Path

import plotly
import pytest
import torch

from analysis.landscape import SurfaceProblem, fused_linear_relu, private_op
from analysis.landscape.fused import OP_NAME, OP_NAMESPACE
from dashboard.figures import landscape as fl


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
def test_the_locked_torch_still_has_the_fused_linear_relu_op():
    assert private_op() is not None, f"torch.ops.{OP_NAMESPACE}.{OP_NAME} is gone"


def test_the_fused_path_is_decided_once_and_says_why():
    op, why = fused_linear_relu()
    assert fused_linear_relu() is fused_linear_relu()  # looked up (and tried) once
    assert why and (op is None) == ("cannot" in why or "no " in why or "differ" in why)


def test_a_bf16_surface_records_the_path_that_ran():
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.ReLU(),
        torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3),
    )  # fmt: skip
    centre = {n: p.detach() for n, p in net.named_parameters()}
    dirs = [{n: torch.ones_like(p) * 0.01 for n, p in centre.items()}]
    x, y = torch.randn(16, 1, 2, 2), torch.randint(0, 3, (16,))
    prob = SurfaceProblem(model=copy.deepcopy(net), centre=centre, dirs=dirs, x=x, y=y)
    assert prob.fused == (False, "fp32 surfaces use the public ops")
    prob.evaluate((0.5,), precision="bf16")
    fused, why = prob.fused
    op, reason = fused_linear_relu()
    assert fused == (op is not None) and why == reason


def plotly_js() -> str:
    """The plotly.js the locked plotly package ships (and the export inlines)."""
    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()


def test_the_locked_plotly_js_still_has_the_scene_internals_camera_js_uses():
    js = plotly_js()
    for name in fl.PLOTLY_INTERNALS:
        assert f".{name}=function" in js, f"plotly.js no longer defines scene.{name}"
        assert f"scene.{name}" in fl.LINK_JS  # and camera.js uses it in its one lookup


def test_camera_js_is_read_from_its_file_and_falls_back_to_relayout():
    text = (Path(fl.__file__).parent / "camera.js").read_text()
    assert text == fl.LINK_JS and "__SCENES__" in text
    assert text.count("full._scene") == 1  # the internals are looked up in one place
    assert "Plotly.relayout(gd, update)" in text  # the public path
    assert '["scene", "scene2"]' in fl.camera_link_script(["scene", "scene2"])
