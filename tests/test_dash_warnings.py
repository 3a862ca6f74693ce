"""The terminal stays clean: the one known-harmless torch warning is filtered, precisely, everywhere.

``torch.func.jvp`` (the landscape's Hessian-vector products) imports
``torch._decomp.decompositions_for_jvp`` on first use, which calls
``torch.jit.script`` and so warns ``FutureWarning: `torch.jit.script` is
deprecated`` in the middle of ``prunescope demo``'s progress bars. Reloading that
module re-runs exactly the code that warns.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from dashboard import cli, known_warnings


def jvp_decompositions():
    """torch's module that scripts its decompositions on import (imported quietly here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("torch._decomp.decompositions_for_jvp")


def test_the_jvp_warning_is_filtered_and_nothing_else():
    module = jvp_decompositions()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        importlib.reload(module)
        assert any("`torch.jit.script` is deprecated" in str(w.message) for w in seen)  # the source
        seen.clear()
        known_warnings.install(environ=None)
        importlib.reload(module)
        warnings.warn(
            "`torch.jit.script` is deprecated. (said elsewhere)", FutureWarning, stacklevel=1
        )
        warnings.warn("`torch.jit.script` is deprecated.", DeprecationWarning, stacklevel=1)
        warnings.warn("some other future", FutureWarning, stacklevel=1)
    assert [(type(w.message), str(w.message)) for w in seen] == [
        (FutureWarning, "`torch.jit.script` is deprecated. (said elsewhere)"),  # another module
        (DeprecationWarning, "`torch.jit.script` is deprecated."),  # another category
        (FutureWarning, "some other future"),
    ]


def test_processes_started_from_here_get_the_filter_too():
    env = {"PYTHONWARNINGS": "error::UserWarning"}
    known_warnings.install(environ=env)
    known_warnings.install(environ=env)  # idempotent
    (option,) = [k.option() for k in known_warnings.KNOWN]
    assert env["PYTHONWARNINGS"] == f"{option},error::UserWarning"  # the user's setting last
    # Python itself parses it into a filter that matches the real message and module.
    probe = (
        "import warnings; action, message, category, module, _ = warnings.filters[1]; "
        "print(action, category.__name__, bool(message.match('`torch.jit.script` is deprecated. "
        "Please switch')), bool(module.match('torch.jit._script')), "
        "bool(module.match('torch.jit._script_other')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["ignore", "FutureWarning", "True", "True", "False"]


def test_the_command_and_the_server_install_it(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(known_warnings, "install", lambda *a, **k: calls.append("installed"))
    assert cli.main(["dashboard", str(tmp_path / "none.toml")]) == 2
    assert calls == ["installed"]

    from dashboard import serve, thirdparty

    monkeypatch.setattr(thirdparty, "streamlit_main", lambda: lambda: 0)
    monkeypatch.setattr(sys, "argv", ["serve", "run", "app.py"])
    with pytest.raises(SystemExit):
        serve.main()
    assert calls == ["installed", "installed"]
